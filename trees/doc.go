// Package trees reads Penn Treebank constituency trees, writes them out as the
// strings a syntax-aware CLIP reads, ties the model's tokens back to the tree's
// nodes, compares the two readings of an ambiguous sentence, and lays trees out
// for the terminal. It is pure Go and knows nothing of tensors or of the TUI.
//
// # Parsing
//
// [Parse] accepts Penn Treebank bracketing with any whitespace, including
// newlines, and an optional outer wrapper that is unlabelled, ROOT or TOP:
//
//	( (S (NP-SBJ (PRP$ my) (NN bag)) (VP (VBZ is) (ADJP (JJ yellow))) (. .)) )
//
// Labels and words are any runs of characters other than whitespace and
// brackets, so PRP$, NP-SBJ=2, -NONE- and -LRB- need no escaping. A word must be
// the only child of its preterminal, as in the Penn Treebank. Syntax errors are
// [*SyntaxError] values that carry the 1-based line and column and a caret
// snippet. Control characters and invalid UTF-8 are refused, so a parsed tree
// never carries a terminal escape sequence.
//
// # Linearization
//
// [Linearize] writes a tree in one of four [Style]s: paper (lower-cased, POS
// tags kept, single spaces: the string the seed paper fine-tunes on), ptb
// (original case), nopos (lower-cased phrase labels over bare words) and words
// (the plain sentence, for the text baseline). The result, a [Linear], records
// for every byte of its text the node and the [PartKind] it belongs to: the
// opening bracket with its label, the word, or the closing bracket. Spaces
// between parts belong to none.
//
// # Alignment and relevance
//
// [Align] maps tokens, given as byte ranges [start, end) into a Linear's text,
// to the parts they overlap. A token may overlap several parts (CLIP's BPE
// makes one token of "))))", which closes four constituents) and a part may be
// covered by several tokens ("(nnp" is "(", "n" and "np").
//
// [Alignment.Aggregate] turns per-token relevance into per-part, per-node and
// per-word relevance by one rule: relevance is summed, and a token that
// overlaps k parts gives each of them 1/k of its relevance. A node's relevance
// is the sum over its own parts (its opening bracket and label, its word, its
// closing bracket), not over its subtree; a word's relevance is that of its
// word part. Tokens that overlap no part (start and end of text markers,
// whitespace) are reported as unassigned, so that the parts' relevance plus
// the unassigned relevance always equals the tokens' total.
//
// # Diff
//
// [Diff] compares two trees over the same words. Constituents correspond when
// they have the same label and the same word span (the k-th such node of one
// tree, in preorder, to the k-th of the other, so unary chains pair up from the
// top). It reports the labelled spans found in only one tree, the smallest
// constituent that holds every difference, and each moved constituent: one
// that both trees have, with the same subtree, whose removal (dropping
// constituents left empty and merging X-over-X unary chains) makes the two
// trees identical. Its attachment site in each tree is its lowest ancestor
// with a wider span, e.g. a PP under VP in one reading and under NP in the
// other. [TreeDiff.UnmatchedParts] and [TreeDiff.UnmatchedTokens] name the
// parts and tokens of each linearization with no counterpart in the other.
//
// # Alternatives
//
// [Reattachments] answers "what if": the trees that differ from a reading by
// one re-attachment over the same leaves in the same order: a PP, a clause
// or a participial clause moved to another NP or VP on the right edge of
// what precedes it, or premodifiers that scope over a whole coordination
// instead of its first conjunct (and back). For a LAVA-style pair, one
// reading's alternatives hold the other reading; each [Alternative] says
// what moved, from which site to which.
//
// # Layout
//
// [Vertical] draws a tree top-down with box-drawing characters and [Compact]
// writes its bracketed one-line form folded to a width. Both return a [Layout]
// of [Segment]s, each tied to its node, so a caller can colour nodes by
// relevance or mark a diff through a [StyleHook] without the layout knowing
// about colours. Labels and words are passed through termtext.Sanitize, and widths
// are measured in terminal cells; no line is wider than the width asked for,
// however small.
package trees
