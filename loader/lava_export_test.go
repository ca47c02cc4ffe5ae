package loader

// TreeFamily lets the external tests (which may import loader/synth) reach
// treeFamily.
var TreeFamily = treeFamily
