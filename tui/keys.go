package tui

import "charm.land/bubbles/v2/key"

// keyMap holds every binding; the help screen lists them all and each
// screen's hint bar shows the ones that act there.
type keyMap struct {
	Up, Down, PageUp, PageDown, Home, End key.Binding
	Open, Back, Next, Prev                key.Binding
	Failures, Flipped, Family, Sort       key.Binding
	Reverse, Search, Jump, Summary        key.Binding
	Method, Layer, Target, Colormap       key.Binding
	Graphics, Boxes, Raw, Export          key.Binding
	FineTune, Toggle, Compare, Tokens     key.Binding
	RunCkpt, Edit, Rank, Undo             key.Binding
	Mask, Swap, Drop                      key.Binding
	Help, Quit, Message                   key.Binding
	// Faithful is the summary's p, which shares its key with Prev.
	Faithful key.Binding
}

func newKeyMap() keyMap {
	b := func(keys []string, k, desc string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(k, desc))
	}
	return keyMap{
		Up:       b([]string{"k", "up"}, "k/↑", "up"),
		Down:     b([]string{"j", "down"}, "j/↓", "down"),
		PageUp:   b([]string{"pgup", "ctrl+u"}, "pgup", "page up"),
		PageDown: b([]string{"pgdown", "ctrl+d"}, "pgdn", "page down"),
		Home:     b([]string{"g", "home"}, "g/home", "first"),
		End:      b([]string{"G", "end"}, "G/end", "last"),
		Open:     b([]string{"enter"}, "enter", "open"),
		Back:     b([]string{"esc", "backspace"}, "esc", "back"),
		Next:     b([]string{"n"}, "n", "next pair"),
		Prev:     b([]string{"p"}, "p", "previous pair"),
		Failures: b([]string{"f"}, "f", "failures only"),
		Flipped:  b([]string{"x"}, "x", "flipped only"),
		Family:   b([]string{"F"}, "F", "family"),
		Sort:     b([]string{"s"}, "s", "sort by"),
		Reverse:  b([]string{"S"}, "S", "reverse order"),
		Search:   b([]string{"/"}, "/", "search"),
		Jump:     b([]string{":"}, ":", "jump to id"),
		Summary:  b([]string{"a"}, "a", "summary"),
		Method:   b([]string{"m"}, "m", "method"),
		Layer:    b([]string{"l"}, "l", "start layer"),
		Target:   b([]string{"t"}, "t", "target cell"),
		Colormap: b([]string{"c"}, "c", "colormap"),
		Graphics: b([]string{"v"}, "v", "graphics"),
		Boxes:    b([]string{"o"}, "o", "evidence boxes"),
		Raw:      b([]string{"i"}, "i", "image/heatmap"),
		Tokens:   b([]string{"w"}, "w", "raw tokens"),
		Export:   b([]string{"e"}, "e", "export PNG+JSON"),
		FineTune: b([]string{"T"}, "T", "fine-tune"),
		Toggle:   b([]string{"b"}, "b", "before/after"),
		Compare:  b([]string{"B"}, "B", "side by side"),
		RunCkpt:  b([]string{"L"}, "L", "after: last/best"),
		Edit:     b([]string{"E"}, "E", "edit a tree"),
		Rank:     b([]string{"R"}, "R", "rank structures"),
		Undo:     b([]string{"u"}, "u", "undo an edit"),
		Mask:     b([]string{"M"}, "M", "mask evidence"),
		Swap:     b([]string{"I"}, "I", "swap images"),
		Drop:     b([]string{"D"}, "D", "drop a phrase"),
		Help:     b([]string{"?"}, "?", "help"),
		Message:  b([]string{"!"}, "!", "last error, whole"),
		Quit:     b([]string{"q", "ctrl+c"}, "q", "quit"),
		Faithful: b([]string{"p"}, "p", "measure faithfulness"),
	}
}

// helpGroups are the columns of the help screen.
func (k keyMap) helpGroups() []helpGroup {
	return []helpGroup{
		{"move", []key.Binding{k.Up, k.Down, k.PageUp, k.PageDown, k.Home, k.End, k.Open, k.Back, k.Next, k.Prev}},
		{"list", []key.Binding{k.Failures, k.Flipped, k.Family, k.Sort, k.Reverse, k.Search, k.Jump, k.Summary}},
		{"explain", []key.Binding{k.Method, k.Layer, k.Target, k.Colormap, k.Graphics, k.Boxes, k.Raw, k.Tokens, k.Export}},
		{"probe", []key.Binding{k.Edit, k.Rank, k.Undo, k.Mask, k.Swap, k.Drop}},
		{"model", []key.Binding{k.FineTune, k.Toggle, k.Compare, k.RunCkpt, k.Message, k.Help, k.Quit}},
	}
}

type helpGroup struct {
	title    string
	bindings []key.Binding
}
