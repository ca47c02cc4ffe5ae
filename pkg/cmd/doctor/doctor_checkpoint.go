package doctor

import (
	"fmt"

	"github.com/lavascope/lavascope/demo"
	"github.com/lavascope/lavascope/model"
)

// checkCheckpoint opens the configured checkpoint the way every command does,
// without libtorch: config, weight headers against the config's shapes, and
// the tokenizer against the text encoder's vocabulary and end-of-text id.
func checkCheckpoint(env *doctorEnv) (checkStatus, string) {
	arg := env.a.Config.Checkpoint
	loc, err := demo.Locate(arg, env.a.Config.Base)
	if err != nil {
		return checkFail, err.Error()
	}
	dir := loc.Dir
	ck, err := model.OpenLocation(loc)
	if err != nil {
		return checkFail, err.Error()
	}
	defer ck.Close()
	tok, err := model.CheckpointTokenizer(dir)
	if err != nil {
		return checkFail, err.Error()
	}
	v, t := ck.Config.Vision, ck.Config.Text
	where := dir
	if loc.File != "" {
		where = "config and tokenizer from " + dir
	}
	return checkOK, fmt.Sprintf("%s (%s)\nvision %d layers × %d wide, %d px in %d px patches; text %d layers × %d wide, %d tokens",
		arg, where, v.NumHiddenLayers, v.HiddenSize, v.ImageSize, v.PatchSize, t.NumHiddenLayers, t.HiddenSize, tok.VocabSize())
}
