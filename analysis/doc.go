// Package analysis reads a reading's token relevance the way the seed
// paper asks about it: which syntactic material carries the decision. It
// turns the per-token relevance of a report.Reading into relevance per word
// and per constituent, contrasts it with the other reading of the pair, and
// aggregates those figures over a split per ambiguity family, with
// histograms, a Markdown and CSV report and PNG charts. It is pure Go: it
// reads reports and trees and runs no model.
//
// # Relevance in context
//
// Every token is tied to the parts of the tree it overlaps by trees.Align
// (a token over k parts gives each 1/k), on the linearization the model
// read: the style whose text equals the report's. A bracket token's share
// goes to the constituent it opens or closes. A word's relevance in context
// is its preterminal's: the word with its opening bracket and tag and its
// closing bracket ("(nn", "bag", ")"). A constituent's relevance is that of
// its own brackets and label; its subtree relevance adds everything below
// it. Constituents (every node above the preterminals) are ranked by their
// own relevance, the largest magnitude first, ties in tree order. Values
// are in the units of the tokens' normalized relevance (shares of the text
// tokens, summing to 1 for a non-negative method).
//
// None of package explain's methods is signed: Chefer's rule and gradattn
// clamp ∇A⊙A at 0 and add it to the identity, rollout and attention are
// attention probabilities. Signed is therefore false for all of them; it
// turns true when a token's relevance is negative, and then words and
// constituents keep the sign while every mass below is a share of the
// absolute values.
//
// # Contrast with the twin
//
// Masses are shares of the reading's relevance on the tokens that cover
// the tree (the start and end of text markers cover nothing), so they lie
// in [0, 1], and are 0 when that relevance is 0.
//
//   - Unique is the share on the tokens the twin's linearization lacks;
//     Shared is the rest, so Unique + Shared = 1. Tokens are matched by
//     trees.TreeDiff.UnmatchedTokens, by structure rather than by string
//     alignment: a token has a counterpart when the twin has a token with
//     the same text that covers the corresponding parts (the same words,
//     the brackets of constituents both trees have). So "(np (np" opening a
//     constituent one tree alone has is unique, and so is a "))))" where
//     the twin closes the same constituents with "))" and "))": the model
//     reads a different token there.
//   - Site is the attachment site of the re-attached constituent in this
//     reading (trees.Diff's first move: its lowest ancestor with a wider
//     span, e.g. the VP "approached the chair with a bag" in one reading
//     and the NP "the chair with a bag" in the other). Its mass is the
//     share on the site's own brackets and label plus its head word's
//     preterminal ("approached" or "chair").
//   - Noun is the ambiguous noun: the head noun of the re-attached
//     constituent, that is the head of the first NP inside it in preorder
//     ("bag" in "with a bag", and in "picking up the bag"), or its own head
//     when it holds no NP. Where the trees differ without a move
//     (adjective scope, coordination) it is the last noun (a word tagged
//     NN*) of the smallest constituent that holds every difference ("bag"
//     in "the green telescope and bag"). Its mass is the share on the
//     noun's preterminal. Site is nil without a move, Noun without a move
//     or such a noun.
//
// Heads follow a small subset of Collins' head rules, enough for LAVA's
// trees: an NP's head is its rightmost noun (NN*, NX, NML, PRP, CD), else
// its first NP; a VP's its first verb (VB*, MD, TO), else its first VP; a
// PP's its first preposition (IN, TO, RP); a clause's its first VP;
// ADJP's and ADVP's their first adjective and adverb; anything else its
// first child; descended until a word.
//
// # Over a split
//
// [Summarize] groups [Row]s by the manifest's ambiguity family (loader names
// it from trees.Diff on import: pp-attachment, vp-attachment,
// adjective-scope, ...) and gives per family and overall the accuracy, the
// mean margin (own logit minus twin's), the mean masses, the faithfulness
// summary of explain.Summarize (pointing game, perturbation AUC, token
// deletion), and histograms of the margin and of Unique on bins shared by
// all families.
package analysis
