package bench

// DefaultTreeTokens is the length in CLIP BPE tokens of the paper's
// linearized tree for its example sentence (docs: "56 CLIP BPE tokens").
const DefaultTreeTokens = 56
