// Package tui is lavascope's explorer: a Bubble Tea program in which a
// researcher steps through the pairs of a split (one ambiguous sentence, two
// parse trees, two images), finds the readings the model gets wrong, and sees
// where it looked: token relevance painted on both parse trees and on their
// linearizations, patch relevance painted on both images, and the 2×2 logits
// of the pair with the explained cell marked. From the same screen a short
// fine-tuning run can be started, after which the explorer marks the pairs
// that flipped, shows a pair before and after side by side, and switches
// between the model before and the run's last or best checkpoint. A summary
// screen gives per family the accuracy, margins, pointing game and the
// relevance masses of package analysis.
//
// Each screen (list, pair, help, fine-tune, message, summary) owns its
// state and its update and view (screenState); what they share is a small
// common (keys, size) and the scheduler, which decides, without a
// terminal, what the model side scores and explains next and keeps the
// results.
//
// The model side is an [Engine]: scoring, relevance and fine-tuning in plain
// Go values, so that the explorer neither computes relevance nor touches a
// tensor; the libtorch engine lives in package tui/torchengine, which
// the command wires in, so that tui imports neither model nor torch. Nothing heavy runs on the UI goroutine: the engine loads, scores,
// explains and trains in tea.Cmds, explanations are cached per (checkpoint,
// pair, method, start layer, target), and once the split is scored it is
// explained in the background with the progress in the status bar.
//
// Images reach the terminal through package tui/graphics. Half-blocks are
// text and are drawn inside the view; sixel and kitty images are written
// with tea.Raw into cells the view leaves blank, after the frame that leaves
// them blank has been flushed, and are drawn again whenever those rows or the
// layout change, and removed when they leave the screen and on quit. All
// text from the dataset passes through termtext.Sanitize (package internal/termtext) before it reaches the
// screen.
package tui
