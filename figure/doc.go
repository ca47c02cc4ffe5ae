// Package figure draws one explained pair as a figure a paper can use: the
// sentence and the run's settings as a title, then a column per reading
// with its gloss, its parse tree coloured by relevance, the image its
// target explains with the relevance heatmap and the evidence boxes drawn
// over it, each panel captioned with which image it shows, the logits of
// its text against the pair's images, and one colour bar with its scale.
//
// A figure is laid out once ([New]) as a list of shapes in a fixed logical
// width; [PNG] rasterises that list at any width and [SVG] writes it with
// real text, so both outputs show the same thing at the same places.
// `lavascope explain` and the explorer's export both draw through it.
package figure
