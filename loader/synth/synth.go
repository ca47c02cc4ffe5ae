// Package synth generates synthetic pairs in the spirit of LAVA: a room with
// Danny, Andrei and Yevgeni and coloured chairs, bags and telescopes, and
// sentences with two readings whose images differ only in what the readings
// say. Every reading comes with its evidence boxes (where its image differs
// from its twin's) and the boxes of every person and object, so the right
// answer and the region that decides it are known.
//
// Pair i depends only on the seed and i: the same seed gives the same bytes on
// any machine, and a subset (one split) can be made without the rest.
package synth

import (
	"errors"
	"fmt"
	"image"
	"io"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/lavascope/lavascope/internal/atomicfile"
	"github.com/lavascope/lavascope/loader"
)

// DefaultSize is the image side CLIP ViT-B/32 takes.
const DefaultSize = 224

// MinSize is the smallest image side at which the scenes stay legible.
const MinSize = 64

// The ambiguity families, in the order pair indices cycle through them.
const (
	PPAttachment   = "pp-attachment"
	AdjectiveScope = "adjective-scope"
	VPAttachment   = "vp-attachment"
)

// Families lists the ambiguity families.
var Families = []string{PPAttachment, AdjectiveScope, VPAttachment}

// Config says which pairs to make.
type Config struct {
	// Pairs is how many pair indices there are: 0 .. Pairs-1.
	Pairs int
	Seed  uint64
	// Size is the image side in pixels; 0 means DefaultSize.
	Size int
	// Split keeps only the pairs of one split; empty keeps all.
	Split string
}

func (c Config) size() int {
	if c.Size == 0 {
		return DefaultSize
	}
	return c.Size
}

// Validate reports a configuration that cannot be generated.
func (c Config) Validate() error {
	switch {
	case c.Pairs < 0:
		return fmt.Errorf("pairs must be ≥ 0, got %d", c.Pairs)
	case c.size() < MinSize || c.size() > 4096:
		return fmt.Errorf("size must be between %d and 4096 pixels, got %d", MinSize, c.Size)
	case c.Split != "" && c.Split != loader.SplitTrain && c.Split != loader.SplitVal && c.Split != loader.SplitTest:
		return fmt.Errorf("split %q is not one of train, val, test", c.Split)
	}
	return nil
}

// SplitOf is the split of pair i: eight in ten train, one val, one test. As
// the families cycle with period three, every split holds all three.
func SplitOf(i int) string {
	switch i % 10 {
	case 8:
		return loader.SplitVal
	case 9:
		return loader.SplitTest
	}
	return loader.SplitTrain
}

// Each makes the configured pairs in index order and passes each to fn, which
// may keep it; generation stops at fn's first error.
func Each(cfg Config, fn func(loader.Pair) error) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	for i := range cfg.Pairs {
		if cfg.Split != "" && SplitOf(i) != cfg.Split {
			continue
		}
		if err := fn(Make(cfg.Seed, i, cfg.size())); err != nil {
			return err
		}
	}
	return nil
}

// Generate makes the configured pairs in memory; their readings hold the
// images as Pixels.
func Generate(cfg Config) ([]loader.Pair, error) {
	var out []loader.Pair
	err := Each(cfg, func(p loader.Pair) error {
		out = append(out, p)
		return nil
	})
	return out, err
}

// ManifestName is the manifest file Write creates in its folder.
const ManifestName = "pairs.jsonl"

// Write makes the configured pairs and writes them under dir: the PNGs under
// images/ and the manifest pairs.jsonl, pair by pair so that memory stays
// flat. It returns how many pairs it wrote.
func Write(dir string, cfg Config) (int, error) {
	n := 0
	err := atomicfile.Write(filepath.Join(dir, ManifestName), func(w io.Writer) error {
		mw := loader.NewWriter(w)
		err := Each(cfg, func(p loader.Pair) error {
			if err := loader.WriteImages(dir, &p); err != nil {
				return err
			}
			n++
			return mw.Write(&p)
		})
		if err != nil {
			return err
		}
		return mw.Flush()
	})
	return n, err
}

// rng draws integers from PCG, whose output is fixed by its specification,
// with our own reductions so that no library change can alter a dataset.
type rng struct{ p *rand.PCG }

// newRNG seeds pair i's generator. The seed and index are mixed first: PCG
// states that differ in a few bits start with correlated outputs, which made
// neighbouring seeds draw the same first choices.
func newRNG(seed uint64, i int) *rng {
	a := splitmix(seed ^ splitmix(uint64(i)))
	return &rng{rand.NewPCG(a, splitmix(a))}
}

// splitmix is the finaliser of SplitMix64.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// intn returns a number in [0, n).
func (r *rng) intn(n int) int { return int(r.p.Uint64() % uint64(n)) }

// between returns a number in [lo, hi].
func (r *rng) between(lo, hi int) int { return lo + r.intn(hi-lo+1) }

func (r *rng) chance(percent int) bool { return r.intn(100) < percent }

// scene is a pair before rendering: the words, the two readings, and the two
// lists of elements, equal where the readings agree.
type scene struct {
	family     string
	words      []string
	trees      [2]string
	glosses    [2]string
	room       room
	els        [2][]element
	mirror     bool
	distractor []element
}

// idPrefix starts the id of each family's pairs.
var idPrefix = map[string]string{PPAttachment: "pp", AdjectiveScope: "adj", VPAttachment: "vp"}

// IndexOf returns the index i of the pair whose id Make gives as id, so that
// a pair can be found without drawing the others.
func IndexOf(id string) (int, bool) {
	prefix, num, ok := strings.Cut(id, "-")
	i, err := strconv.Atoi(num)
	if !ok || err != nil || i < 0 || fmt.Sprintf("%s-%05d", prefix, i) != id || idPrefix[Families[i%len(Families)]] != prefix {
		return 0, false
	}
	return i, true
}

// Make builds pair i of the dataset with the given seed at the given image
// size.
func Make(seed uint64, i, size int) loader.Pair {
	r := newRNG(seed, i)
	var sc scene
	switch family := Families[i%len(Families)]; family {
	case PPAttachment:
		sc = ppScene(r, size)
	case AdjectiveScope:
		sc = adjScene(r, size)
	default:
		sc = vpScene(r, size)
	}
	id := fmt.Sprintf("%s-%05d", idPrefix[sc.family], i)
	p := loader.Pair{ID: id, Sentence: sentence(sc.words), Ambiguity: sc.family, Split: SplitOf(i)}
	var imgs [2]*image.RGBA
	var boxes [2][]image.Rectangle
	for k := range 2 {
		els := append(append([]element(nil), sc.distractor...), sc.els[k]...)
		imgs[k], boxes[k] = render(size, sc.room, els, sc.mirror)
	}
	nd := len(sc.distractor)
	for k := range 2 {
		els := append(append([]element(nil), sc.distractor...), sc.els[k]...)
		var ev, all []loader.Box
		for j, e := range els {
			b := boxes[k][j]
			if b.Empty() {
				continue
			}
			all = append(all, box(e.label, e.role(), b))
			if j >= nd && sc.els[0][j-nd] != sc.els[1][j-nd] {
				if d := diffBounds(imgs[0], imgs[1], b); !d.Empty() {
					ev = append(ev, box(e.label, loader.RoleEvidence, d))
				}
			}
		}
		p.Readings = append(p.Readings, loader.Reading{
			Tree:   sc.trees[k],
			Image:  fmt.Sprintf("images/%s-%c.png", id, 'a'+k),
			Gloss:  sc.glosses[k],
			Boxes:  append(ev, all...),
			Pixels: imgs[k],
		})
	}
	return p
}

func box(label, role string, r image.Rectangle) loader.Box {
	return loader.Box{Label: label, Role: role, X0: r.Min.X, Y0: r.Min.Y, X1: r.Max.X, Y1: r.Max.Y}
}

// diffBounds is the bounding box of the pixels inside r where a and b differ:
// an element's evidence is where it changed, not all of it (a telescope's
// tripod stays put when its tube changes colour).
func diffBounds(a, b *image.RGBA, r image.Rectangle) image.Rectangle {
	var out image.Rectangle
	for y := r.Min.Y; y < r.Max.Y; y++ {
		i, j := a.PixOffset(r.Min.X, y), a.PixOffset(r.Max.X, y)
		ra, rb := a.Pix[i:j], b.Pix[i:j]
		for x := 0; x < len(ra); x += 4 {
			if ra[x] != rb[x] || ra[x+1] != rb[x+1] || ra[x+2] != rb[x+2] {
				out = out.Union(image.Rect(r.Min.X+x/4, y, r.Min.X+x/4+1, y+1))
			}
		}
	}
	return out
}

// sentence joins words. As in LAVA, neither the sentence nor its trees end in
// punctuation, so `))))` closes the NP-attachment reading as the paper notes.
func sentence(words []string) string {
	return strings.Join(words, " ")
}

var errNoRoom = errors.New("scene does not fit")

// layout places a family's elements at a scale; it fails with errNoRoom when
// they do not fit the image, and the caller tries a smaller scale.
type layout func(scale int) (scene, error)

// fit lays a scene out at the largest scale (from a random start) at which it
// fits, then adds the room, distractors and mirroring.
func fit(r *rng, size, gy int, lay layout, extras []element) scene {
	var sc scene
	var err error
	for scale := r.between(86, 108); scale >= 40; scale -= 6 {
		if sc, err = lay(scale); err == nil {
			break
		}
	}
	sc.mirror = r.chance(50)
	lo, hi := span(size, sc.els[0], sc.els[1])
	sc.distractor = distract(r, size, lo, hi, extras)
	sc.room = makeRoom(r, size, gy)
	return sc
}

// span is the horizontal extent of the elements of both readings.
func span(size int, lists ...[]element) (int, int) {
	lo, hi := size, 0
	for _, els := range lists {
		for _, e := range els {
			w := e.width(size)
			lo, hi = min(lo, e.x-w/2), max(hi, e.x+w/2)
		}
	}
	return lo, hi
}

// place shifts a group laid out from x=0 to a random position inside the
// image, or reports that it is too wide.
func place(r *rng, size int, lists ...[]element) error {
	lo, hi := span(size, lists...)
	margin := size * 3 / 100
	room := size - 2*margin - (hi - lo)
	if room < 0 {
		return errNoRoom
	}
	dx := margin - lo + r.intn(room+1)
	for _, els := range lists {
		for i := range els {
			els[i].x += dx
		}
	}
	return nil
}

// distract puts up to two of the candidate elements in the free space beside
// the group [lo, hi); they are the same in both images.
func distract(r *rng, size, lo, hi int, candidates []element) []element {
	margin, pad := size*2/100, size*6/100
	free := [][2]int{{margin, lo - pad}, {hi + pad, size - margin}}
	var out []element
	candidates = slices.Clone(candidates)
	for range r.intn(3) {
		if len(candidates) == 0 {
			break
		}
		// Each candidate at most once: a person is in a room only once.
		c := r.intn(len(candidates))
		e := candidates[c]
		candidates = slices.Delete(candidates, c, c+1)
		w := e.width(size)
		var fits []int
		for k, f := range free {
			if f[1]-f[0] >= w {
				fits = append(fits, k)
			}
		}
		if len(fits) == 0 {
			continue
		}
		k := fits[r.intn(len(fits))]
		left := free[k][0] + r.intn(free[k][1]-free[k][0]-w+1)
		e.x = left + w/2
		if e.kind == kTelescope {
			e.y = e.gy - e.dims(size).px(tripodH)
		}
		free = append(free, [2]int{left + w + pad, free[k][1]})
		free[k][1] = left - pad
		out = append(out, e)
	}
	return out
}

func makeRoom(r *rng, size, gy int) room {
	rm := room{
		wall:   walls[r.intn(len(walls))],
		floor:  floors[r.intn(len(floors))],
		floorY: gy - size*r.between(80, 170)/1000,
	}
	for k := range r.intn(3) {
		w := size * r.between(140, 230) / 1000
		h := size * r.between(110, 190) / 1000
		half := size / 2
		top := size * 4 / 100
		bottom := rm.floorY - h - size*4/100
		if bottom < top {
			continue
		}
		rm.decor = append(rm.decor, decor{
			window: r.chance(50),
			x:      k*half + r.intn(max(1, half-w)),
			y:      r.between(top, bottom),
			w:      w, h: h,
			col: colours[r.intn(len(colours))].rgb,
		})
	}
	return rm
}

// groundLine is where feet and chair legs touch the floor.
func groundLine(r *rng, size int) int { return size * r.between(860, 930) / 1000 }

// objectNames of the kinds a sentence can mention.
var objectNames = map[kind]string{kChair: "chair", kBag: "bag", kTelescope: "telescope"}

// extras are the distractor candidates of a scene: the people and object
// kinds the sentence does not mention, and furniture no sentence mentions.
func extras(r *rng, size, gy int, mentioned []*look, kinds []kind) []element {
	var out []element
	for _, p := range people {
		if !contains(mentioned, p) {
			out = append(out, element{kind: kPerson, label: p.name, who: p, gy: gy, scale: r.between(84, 100), face: 1 - 2*r.intn(2)})
		}
	}
	for _, k := range []kind{kChair, kBag, kTelescope} {
		if !contains(kinds, k) {
			c := colours[r.intn(len(colours))]
			e := element{kind: k, label: c.name + " " + objectNames[k], col: c.rgb, gy: gy, y: gy, scale: r.between(84, 100), face: 1 - 2*r.intn(2), tripod: k == kTelescope}
			out = append(out, e)
		}
	}
	out = append(out,
		element{kind: kPlant, label: "plant", gy: gy, scale: r.between(80, 105)},
		element{kind: kLamp, label: "lamp", gy: gy, scale: r.between(85, 100)})
	return out
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// twoColours picks two different object colours.
func twoColours(r *rng) (paint, paint) {
	a := r.intn(len(colours))
	b := (a + 1 + r.intn(len(colours)-1)) % len(colours)
	return colours[a], colours[b]
}

func nnp(name string) string { return "(NP (NNP " + name + "))" }

// ppScene: "Danny approached the green chair with a yellow bag." The PP
// attaches to the verb (Danny has the bag) or to the chair (the bag is on it).
func ppScene(r *rng, size int) scene {
	who := people[r.intn(len(people))]
	obj := kBag
	if r.chance(40) {
		obj = kTelescope
	}
	looked := obj == kTelescope && r.chance(60)
	c1, c2 := twoColours(r)
	noun := objectNames[obj]
	chairNP := fmt.Sprintf("(NP (DT the) (JJ %s) (NN chair))", c1.name)
	withPP := fmt.Sprintf("(PP (IN with) (NP (DT a) (JJ %s) (NN %s)))", c2.name, noun)
	sc := scene{family: PPAttachment}
	var gloss string
	if looked {
		sc.words = []string{who.name, "looked", "at", "the", c1.name, "chair", "with", "a", c2.name, noun}
		sc.trees[0] = fmt.Sprintf("(S %s (VP (VBD looked) (PP (IN at) %s) %s))", nnp(who.name), chairNP, withPP)
		sc.trees[1] = fmt.Sprintf("(S %s (VP (VBD looked) (PP (IN at) (NP %s %s))))", nnp(who.name), chairNP, withPP)
		gloss = fmt.Sprintf("%s looks through the %s %s", who.name, c2.name, noun)
	} else {
		sc.words = []string{who.name, "approached", "the", c1.name, "chair", "with", "a", c2.name, noun}
		sc.trees[0] = fmt.Sprintf("(S %s (VP (VBD approached) %s %s))", nnp(who.name), chairNP, withPP)
		sc.trees[1] = fmt.Sprintf("(S %s (VP (VBD approached) (NP %s %s)))", nnp(who.name), chairNP, withPP)
		gloss = fmt.Sprintf("%s carries the %s %s", who.name, c2.name, noun)
	}
	sc.glosses = [2]string{gloss, fmt.Sprintf("the %s %s is on the %s chair", c2.name, noun, c1.name)}
	gy := groundLine(r, size)
	chairFace := 1 - 2*r.intn(2)
	gapPM := r.between(25, 110)
	objFace := 1
	lay := func(scale int) (scene, error) {
		s := sc
		pose := standing
		if looked {
			pose = holding
		}
		person := element{kind: kPerson, label: who.name, who: who, x: 0, gy: gy, scale: scale, face: 1, pose: pose}
		held := element{kind: obj, label: c2.name + " " + noun, col: c2.rgb, gy: gy, scale: scale, face: objFace}
		d := held.dims(size)
		hx, hy := person.hand(size)
		var reach int
		if obj == kBag {
			held.x, held.y = hx, hy+d.px(handleH+bagHeight)-d.px(10)
			reach = hx + d.px(bagWidth)/2
		} else {
			held.x, held.y = hx+d.px(tubeLength)/2-d.px(15), hy
			reach = held.x + d.px(tubeLength)/2 + d.px(bellLength)
		}
		chair := element{kind: kChair, label: c1.name + " chair", col: c1.rgb, gy: gy, scale: scale, face: chairFace}
		chair.x = reach + size*gapPM/1000 + d.px(chairWidth)/2
		onSeat := held
		sx, sy := chair.seat(size)
		onSeat.x, onSeat.y = sx, sy
		if obj == kTelescope {
			onSeat.y = sy - d.px(bellThick)/2
		}
		s.els[0] = []element{chair, person, held}
		s.els[1] = []element{chair, person, onSeat}
		return s, place(r, size, s.els[0], s.els[1])
	}
	return fit(r, size, gy, lay, extras(r, size, gy, []*look{who}, []kind{kChair, obj}))
}

// adjScene: "Andrei moved the yellow chair and bag." The adjective covers both
// nouns (both are yellow) or only the first (the bag has another colour).
func adjScene(r *rng, size int) scene {
	who := people[r.intn(len(people))]
	kinds := []kind{kChair, kBag, kTelescope}
	a := r.intn(3)
	b := (a + 1 + r.intn(2)) % 3
	n1, n2 := kinds[a], kinds[b]
	c, other := twoColours(r)
	verb := []string{"moved", "approached", "looked"}[r.intn(3)]
	wide := fmt.Sprintf("(NP (DT the) (JJ %s) (NX (NX (NN %s)) (CC and) (NX (NN %s))))", c.name, objectNames[n1], objectNames[n2])
	narrow := fmt.Sprintf("(NP (NP (DT the) (JJ %s) (NN %s)) (CC and) (NP (NN %s)))", c.name, objectNames[n1], objectNames[n2])
	sc := scene{family: AdjectiveScope}
	if verb == "looked" {
		sc.words = []string{who.name, "looked", "at", "the", c.name, objectNames[n1], "and", objectNames[n2]}
		sc.trees[0] = fmt.Sprintf("(S %s (VP (VBD looked) (PP (IN at) %s)))", nnp(who.name), wide)
		sc.trees[1] = fmt.Sprintf("(S %s (VP (VBD looked) (PP (IN at) %s)))", nnp(who.name), narrow)
	} else {
		sc.words = []string{who.name, verb, "the", c.name, objectNames[n1], "and", objectNames[n2]}
		sc.trees[0] = fmt.Sprintf("(S %s (VP (VBD %s) %s))", nnp(who.name), verb, wide)
		sc.trees[1] = fmt.Sprintf("(S %s (VP (VBD %s) %s))", nnp(who.name), verb, narrow)
	}
	sc.glosses = [2]string{
		fmt.Sprintf("the %s and the %s are both %s", objectNames[n1], objectNames[n2], c.name),
		fmt.Sprintf("only the %s is %s; the %s is %s", objectNames[n1], c.name, objectNames[n2], other.name),
	}
	gy := groundLine(r, size)
	firstNear := r.chance(50)
	gapPM := r.between(20, 90)
	gap2PM := r.between(20, 60)
	faces := [2]int{1 - 2*r.intn(2), 1 - 2*r.intn(2)}
	lay := func(scale int) (scene, error) {
		s := sc
		pose := standing
		if verb == "moved" {
			pose = holding
		}
		person := element{kind: kPerson, label: who.name, who: who, gy: gy, scale: scale, face: 1, pose: pose}
		mk := func(k kind, col paint, face int) element {
			e := element{kind: k, label: col.name + " " + objectNames[k], col: col.rgb, gy: gy, y: gy, scale: scale, face: face, tripod: k == kTelescope}
			if k == kTelescope {
				e.y = gy - e.dims(size).px(tripodH)
			}
			return e
		}
		o1, o2a, o2b := mk(n1, c, faces[0]), mk(n2, c, faces[1]), mk(n2, other, faces[1])
		near, far := &o1, []*element{&o2a, &o2b}
		if !firstNear {
			near, far = &o2a, []*element{&o1}
		}
		hx, _ := person.hand(size)
		x := max(hx, person.width(size)/2) + size*gapPM/1000 + near.width(size)/2
		if pose == holding {
			x = hx + near.width(size)/2 - size/100
		}
		near.x = x
		if !firstNear {
			o2b.x = x
		}
		x += near.width(size)/2 + size*gap2PM/1000 + far[0].width(size)/2
		for _, e := range far {
			e.x = x
		}
		s.els[0] = []element{person, o1, o2a}
		s.els[1] = []element{person, o1, o2b}
		return s, place(r, size, s.els[0], s.els[1])
	}
	return fit(r, size, gy, lay, extras(r, size, gy, []*look{who}, []kind{n1, n2}))
}

// vpScene: "Yevgeni looked at Danny picking up the bag." The participle
// attaches to the verb (Yevgeni picks the bag up) or to Danny (Danny does).
func vpScene(r *rng, size int) scene {
	i := r.intn(3)
	j := (i + 1 + r.intn(2)) % 3
	p1, p2 := people[i], people[j]
	obj := kBag
	if r.chance(40) {
		obj = kTelescope
	}
	noun := objectNames[obj]
	col := colours[r.intn(len(colours))]
	picking := fmt.Sprintf("(VP (VBG picking) (PRT (RP up)) (NP (DT the) (NN %s)))", noun)
	sc := scene{family: VPAttachment}
	if r.chance(50) {
		sc.words = []string{p1.name, "looked", "at", p2.name, "picking", "up", "the", noun}
		sc.trees[0] = fmt.Sprintf("(S %s (VP (VBD looked) (PP (IN at) %s) (S %s)))", nnp(p1.name), nnp(p2.name), picking)
		sc.trees[1] = fmt.Sprintf("(S %s (VP (VBD looked) (PP (IN at) (NP %s %s))))", nnp(p1.name), nnp(p2.name), picking)
	} else {
		sc.words = []string{p1.name, "watched", p2.name, "picking", "up", "the", noun}
		sc.trees[0] = fmt.Sprintf("(S %s (VP (VBD watched) %s (S %s)))", nnp(p1.name), nnp(p2.name), picking)
		sc.trees[1] = fmt.Sprintf("(S %s (VP (VBD watched) (NP %s %s)))", nnp(p1.name), nnp(p2.name), picking)
	}
	sc.glosses = [2]string{
		fmt.Sprintf("%s picks up the %s", p1.name, noun),
		fmt.Sprintf("%s picks up the %s", p2.name, noun),
	}
	gy := groundLine(r, size)
	face2 := -1
	if r.chance(25) {
		face2 = 1
	}
	gapPM := r.between(30, 120)
	objFace := 1 - 2*r.intn(2)
	lay := func(scale int) (scene, error) {
		s := sc
		a := element{kind: kPerson, label: p1.name, who: p1, gy: gy, scale: scale, face: 1}
		b := element{kind: kPerson, label: p2.name, who: p2, gy: gy, scale: scale, face: face2}
		thing := element{kind: obj, label: col.name + " " + noun, col: col.rgb, gy: gy, scale: scale, face: objFace}
		d := thing.dims(size)
		// pick crouches p and puts the object in its hand on the floor.
		pick := func(p element) (element, element) {
			p.pose = crouching
			t := thing
			if obj == kBag {
				t.y = gy - d.px(6)
				p.handY = t.y - d.px(bagHeight+handleH) + d.px(10)
			} else {
				t.y = gy - d.px(bellThick)/2 - d.px(4)
				p.handY = t.y - d.px(tubeThick)/2
			}
			t.x, _ = p.hand(size)
			return p, t
		}
		reach := func(p element) int {
			p.pose = crouching
			hx, _ := p.hand(size)
			return abs(hx-p.x) + thing.width(size)/2
		}
		front2 := b.width(size) / 2
		if face2 < 0 {
			front2 = reach(b)
		}
		b.x = reach(a) + size*gapPM/1000 + front2
		a1, t1 := pick(a)
		b2, t2 := pick(b)
		s.els[0] = []element{a1, b, t1}
		s.els[1] = []element{a, b2, t2}
		return s, place(r, size, s.els[0], s.els[1])
	}
	return fit(r, size, gy, lay, extras(r, size, gy, []*look{p1, p2}, []kind{obj}))
}

// Demo is the dataset of the embedded demo: the test split of 1010 pairs
// with seed 1, which is 101 pairs, as many as the paper's LAVA test set. The
// demo model picks its best checkpoint on the val split of the same
// configuration and trains on the train split of a larger range of pairs
// with the same seed (package demo says which); splits never share a pair.
func Demo() Config { return Config{Pairs: 1010, Seed: 1, Split: loader.SplitTest} }
