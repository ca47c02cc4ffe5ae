package explain

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/loader/synth"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/tokenizer"
	"github.com/lavascope/lavascope/trees"
)

// A small CLIP trained inside the test on synthetic LAVA-style pairs with
// the project's trainer, so that relevance can be checked against the
// evidence boxes the generator writes. The images are 112 pixels in
// 16-pixel patches: the 7×7 grid of ViT-B/32 at a fraction of the cost.
const (
	synthSize  = 112
	synthPatch = 16
	synthSeed  = 11
)

// synthReading is one test reading prepared for the model.
type synthReading struct {
	pair   string
	ids    []int64
	pixels []float32 // own image, preprocessed [3,S,S]
	twin   []float32
	boxes  []loader.Box
}

// prepareSynth tokenizes and preprocesses the readings of pairs.
func prepareSynth(tb testing.TB, m *model.CLIP, tok *tokenizer.Tokenizer, pairs []loader.Pair) []synthReading {
	tb.Helper()
	pp, err := model.PreprocessFor(m)
	if err != nil {
		tb.Fatal(err)
	}
	ctx := m.Config().Text.MaxPositionEmbeddings
	var out []synthReading
	for _, p := range pairs {
		var px [2][]float32
		for k := range 2 {
			if px[k], err = loader.Preprocess(p.Readings[k].Pixels, pp); err != nil {
				tb.Fatal(err)
			}
		}
		texts, err := model.ReadingTexts(&p, trees.StylePaper)
		if err != nil {
			tb.Fatal(err)
		}
		for k, r := range p.Readings[:2] {
			ids, err := tok.Pack([]tokenizer.Encoding{tok.Encode(texts[k], ctx)}, ctx)
			if err != nil {
				tb.Fatal(err)
			}
			out = append(out, synthReading{
				pair: p.ID, ids: ids, pixels: px[k], twin: px[1-k],
				boxes: r.BoxesWithRole(loader.RoleEvidence),
			})
		}
	}
	return out
}

// synthConfig is the model: 7×7 patches, width 48, two layers a side.
func synthConfig(tok *tokenizer.Tokenizer) (*model.CLIPConfig, error) {
	c, err := model.NamedConfig("tiny")
	if err != nil {
		return nil, err
	}
	c.Vision.ImageSize, c.Vision.PatchSize = synthSize, synthPatch
	for _, e := range []struct{ hidden, inter *int }{
		{&c.Vision.HiddenSize, &c.Vision.IntermediateSize},
		{&c.Text.HiddenSize, &c.Text.IntermediateSize},
	} {
		*e.hidden, *e.inter = 48, 96
	}
	c.Text.VocabSize = tok.VocabSize()
	c.Text.BOSTokenID, c.Text.EOSTokenID, c.Text.PadTokenID = int(tok.BOS()), int(tok.EOS()), int(tok.EOS())
	return c, nil
}

// synthCache holds the models for the rest of the test binary (never
// closed: the process ends first).
var synthCache struct {
	sync.Mutex
	trained, untrained *model.CLIP
	test               []synthReading
}

// synthModels generates the data, learns a vocabulary and trains the model
// on the first call (contrastive loss over batches of whole pairs, as the
// paper trains), and returns it, the same model untrained (the control),
// and the test split's readings.
func synthModels(tb testing.TB) (trained, untrained *model.CLIP, test []synthReading) {
	tb.Helper()
	torchtest.Require(tb)
	synthCache.Lock()
	defer synthCache.Unlock()
	if synthCache.trained != nil {
		return synthCache.trained, synthCache.untrained, synthCache.test
	}
	pairs, err := synth.Generate(synth.Config{Pairs: 2000, Seed: synthSeed, Size: synthSize})
	if err != nil {
		tb.Fatal(err)
	}
	ds := &loader.Dataset{Pairs: pairs}
	train := model.DatasetSplit(ds, loader.SplitTrain)
	var texts []string
	for _, p := range ds.Split(loader.SplitTrain).Pairs {
		ts, err := model.ReadingTexts(&p, trees.StylePaper)
		if err != nil {
			tb.Fatal(err)
		}
		texts = append(texts, ts...)
	}
	tok, err := tokenizer.LearnBPE(texts, 400, 2)
	if err != nil {
		tb.Fatal(err)
	}
	cfg, err := synthConfig(tok)
	if err != nil {
		tb.Fatal(err)
	}
	var ms [2]*model.CLIP
	for i := range ms {
		if ms[i], err = model.Init(cfg, model.Options{}, synthSeed); err != nil {
			tb.Fatal(err)
		}
	}
	o := model.DefaultTrainOptions()
	o.BatchPairs, o.Steps, o.Warmup, o.Seed = 4, 1200, 100, synthSeed
	o.AdamW.LR, o.AdamW.WeightDecay = 2e-3, 0.05
	start := time.Now()
	res, err := model.Train(context.Background(), ms[0], tok, train, nil, o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Logf("trained %d steps on %d pairs in %v", res.Step, train.Len(), time.Since(start).Round(time.Millisecond))
	synthCache.trained, synthCache.untrained = ms[0], ms[1]
	synthCache.test = prepareSynth(tb, ms[0], tok, ds.Split(loader.SplitTest).Pairs)
	return synthCache.trained, synthCache.untrained, synthCache.test
}
