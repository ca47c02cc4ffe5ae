package importlava_test

import (
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/pkg/cmd/cmdtest"
)

func TestImportLAVACommand(t *testing.T) {
	root := t.TempDir()
	corpus := filepath.Join(root, "corpus")
	if err := os.MkdirAll(filepath.Join(corpus, "images"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"00022-10090-10190", "00022-10300-10400"} {
		f, err := os.Create(filepath.Join(corpus, "images", name+".jpg"))
		if err != nil {
			t.Fatal(err)
		}
		img := image.NewRGBA(image.Rect(0, 0, 32, 24))
		img.Set(2, 2, color.RGBA{255, 0, 0, 255})
		jpeg.Encode(f, img, nil)
		f.Close()
	}
	entry := func(frame, tree string) map[string]any {
		return map[string]any{"text": "Danny approached the green chair with a yellow bag.", "visualFilename": frame, "syntax": map[string]any{"ptb": tree}}
	}
	data, _ := json.Marshal([]any{entry("00022-10090-10190", cmdtest.PPA), entry("00022-10300-10400", cmdtest.PPB)})
	if err := os.WriteFile(filepath.Join(corpus, "lava.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(corpus, "pairs.jsonl")

	_, stderr, code := cmdtest.RunCLI(t, "", "import-lava", "--corpus", root, "--out", out)
	if code != 2 || !strings.Contains(stderr, `has the key "syntactic_tree" for the tree`) || !strings.Contains(stderr, "syntax.ptb") {
		t.Errorf("misfit: exit %d\n%s", code, stderr)
	}
	_, stderr, code = cmdtest.RunCLI(t, "", "import-lava", "--corpus", root, "--out", out, "--field", "tree")
	if code != 2 || !strings.Contains(stderr, "want FIELD=KEY") {
		t.Errorf("bad --field: exit %d\n%s", code, stderr)
	}
	stdout, stderr, code := cmdtest.RunCLI(t, "", "import-lava", "--corpus", root, "--out", out, "--field", "tree=syntax.ptb")
	if code != 0 || !strings.Contains(stdout, "wrote 1 pairs") {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	stdout, stderr, code = cmdtest.RunCLI(t, "", "data", "check", "--data", out, "--check-images")
	if code != 0 {
		t.Errorf("imported manifest: exit %d\n%s%s", code, stdout, stderr)
	}
}
