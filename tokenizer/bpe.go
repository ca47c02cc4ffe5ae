package tokenizer

import (
	"container/heap"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Byte-pair encoding of one pre-tokenized piece, GPT-2's byte alphabet.

const (
	// Words longer than smallWord bytes use the O(n log n) merge loop; shorter
	// ones the simple quadratic one, which is faster at that size.
	smallWord = 64
	// Only words up to cachedWord bytes are cached, and the cache is cleared when
	// it reaches maxCachedWords, so memory stays bounded on any input stream.
	cachedWord     = 64
	maxCachedWords = 1 << 16
)

// wordCache maps words to their BPE. Hits read an immutable map through an
// atomic pointer, so concurrent encoders share no written memory; new words go
// to a locked map that is copied over the read map once it has missed as many
// times as it has entries (the scheme of sync.Map, without boxing the keys).
type wordCache struct {
	read   atomic.Pointer[map[string]bpeWord]
	mu     sync.Mutex
	dirty  map[string]bpeWord // every entry, read's included
	misses int
}

func (c *wordCache) get(w string) (bpeWord, bool) {
	if m := c.read.Load(); m != nil {
		if bw, ok := (*m)[w]; ok {
			return bw, true
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	bw, ok := c.dirty[w]
	c.missLocked()
	return bw, ok
}

func (c *wordCache) put(w string, bw bpeWord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.dirty) >= maxCachedWords {
		c.dirty = nil
		c.read.Store(nil)
	}
	if c.dirty == nil {
		c.dirty = make(map[string]bpeWord)
	}
	c.dirty[strings.Clone(w)] = bw
}

func (c *wordCache) missLocked() {
	c.misses++
	if c.misses >= len(c.dirty) {
		m := maps.Clone(c.dirty)
		c.read.Store(&m)
		c.misses = 0
	}
}

type merge struct{ rank, sym int32 }

type rankPair struct{ a, b, sym int32 }

// bpeWord is the BPE of one word: ids[i] covers bytes [ends[i-1], ends[i]) of it.
type bpeWord struct{ ids, ends []int32 }

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// word returns the BPE of one pre-tokenized piece, from the cache when it can.
func (t *Tokenizer) word(w string) bpeWord {
	if len(w) > cachedWord {
		return t.bpe(w)
	}
	if bw, ok := t.cache.get(w); ok {
		return bw
	}
	bw := t.bpe(w)
	t.cache.put(w, bw)
	return bw
}

// bpe merges the byte symbols of w (non-empty) and maps the result to vocabulary ids.
func (t *Tokenizer) bpe(w string) bpeWord {
	n := len(w)
	buf := make([]int32, 2*n)
	syms, ends := buf[:n], buf[n:]
	for i := range n {
		syms[i] = t.byteSym[w[i]]
		ends[i] = int32(i + 1)
	}
	syms[n-1] = t.byteEndSym[w[n-1]]
	if n <= smallWord {
		n = t.mergeSmall(syms, ends)
	} else {
		n = t.mergeLarge(syms, ends)
	}
	out := make([]int32, 2*n)
	ids, oends := out[:n], out[n:]
	for i := range n {
		ids[i] = syms[i]
		if syms[i] > t.maxID || t.tokens[syms[i]] == "" {
			ids[i] = t.unk
		}
	}
	copy(oends, ends[:n])
	return bpeWord{ids: ids, ends: oends}
}

// mergeSmall is OpenAI's loop: find the pair of lowest rank, merge each of its
// occurrences left to right, repeat. It returns the new length.
func (t *Tokenizer) mergeSmall(syms, ends []int32) int {
	n := len(syms)
	for n > 1 {
		best, at := merge{rank: -1}, -1
		for i := 0; i+1 < n; i++ {
			if m, ok := t.merges[pairKey(syms[i], syms[i+1])]; ok && (at < 0 || m.rank < best.rank) {
				best, at = m, i
			}
		}
		if at < 0 {
			break
		}
		a, b := syms[at], syms[at+1]
		w := at
		for i := at; i < n; w++ {
			if i+1 < n && syms[i] == a && syms[i+1] == b {
				syms[w], ends[w] = best.sym, ends[i+1]
				i += 2
			} else {
				syms[w], ends[w] = syms[i], ends[i]
				i++
			}
		}
		n = w
	}
	return n
}

// mergeLarge gives mergeSmall's result in O(n log n): a heap of the ranks
// present, and for each rank the positions where its pair starts. Popping a
// rank is one round of OpenAI's loop; its positions, sorted, are merged left
// to right, skipping those a merge of the same round consumed or changed.
func (t *Tokenizer) mergeLarge(syms, ends []int32) int {
	n := len(syms)
	next := make([]int32, n)
	prev := make([]int32, n)
	for i := range n {
		next[i], prev[i] = int32(i+1), int32(i-1)
	}
	next[n-1] = -1
	alive := make([]bool, n)
	for i := range alive {
		alive[i] = true
	}
	at := make(map[int32][]int32)
	var ranks rankHeap
	add := func(p int32) {
		if p < 0 || next[p] < 0 {
			return
		}
		q := next[p]
		m, ok := t.merges[pairKey(syms[p], syms[q])]
		if !ok {
			return
		}
		if len(at[m.rank]) == 0 {
			heap.Push(&ranks, m.rank)
		}
		at[m.rank] = append(at[m.rank], p)
	}
	for i := range n - 1 {
		add(int32(i))
	}
	for ranks.Len() > 0 {
		r := heap.Pop(&ranks).(int32)
		pos := at[r]
		delete(at, r)
		slices.Sort(pos)
		rp := t.byRank[r]
		for _, p := range pos {
			q := next[p]
			if !alive[p] || q < 0 || syms[p] != rp.a || syms[q] != rp.b {
				continue
			}
			syms[p], ends[p] = rp.sym, ends[q]
			alive[q] = false
			next[p] = next[q]
			if next[q] >= 0 {
				prev[next[q]] = p
			}
			add(prev[p])
			add(p)
		}
	}
	w := 0
	for i := int32(0); i >= 0; i = next[i] {
		syms[w], ends[w] = syms[i], ends[i]
		w++
	}
	return w
}

type rankHeap []int32

func (h rankHeap) Len() int           { return len(h) }
func (h rankHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h rankHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *rankHeap) Push(x any)        { *h = append(*h, x.(int32)) }
func (h *rankHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// byteToRune is GPT-2's bytes_to_unicode: printable Latin-1 bytes map to
// themselves, the others to U+0100 onwards, so every byte is a visible rune.
var byteToRune = func() (m [256]rune) {
	n := 0
	for b := range 256 {
		if ('!' <= b && b <= '~') || ('¡' <= b && b <= '¬') || ('®' <= b && b <= 'ÿ') {
			m[b] = rune(b)
		} else {
			m[b] = rune(256 + n)
			n++
		}
	}
	return m
}()

var runeToByteTable = func() (m [324]int16) {
	for i := range m {
		m[i] = -1
	}
	for b, r := range byteToRune {
		m[r] = int16(b)
	}
	return m
}()

func runeToByte(r rune) (byte, bool) {
	if r < 0 || int(r) >= len(runeToByteTable) || runeToByteTable[r] < 0 {
		return 0, false
	}
	return byte(runeToByteTable[r]), true
}
