package synth

import (
	"image"
	"image/color"

	"github.com/lavascope/lavascope/loader"
)

// A scene is drawn in a side view: a wall, a floor, and people and objects
// standing on one ground line. Sizes are in thousandths of the image side
// (scaled by a per-scene percentage), so every image size gets the same scene.

type kind int

const (
	kPerson kind = iota
	kChair
	kBag
	kTelescope
	kPlant
	kLamp
)

type pose int

const (
	standing  pose = iota // arms by the sides, the hand at the hip
	holding               // one arm held forward at shoulder height
	crouching             // bent over, one arm reaching to the floor
)

// look is how a person is recognised: a fixed outfit and head.
type look struct {
	name                  string
	shirt, trousers, hair color.RGBA
	beard, hat, coat      bool
}

var (
	skin  = color.RGBA{236, 188, 150, 255}
	dark  = color.RGBA{35, 30, 30, 255}
	metal = color.RGBA{70, 70, 78, 255}
)

// people are the three persons of LAVA's sentences. Their clothes avoid the
// object colours so that "the yellow bag" never matches a shirt.
var people = []*look{
	{name: "Danny", shirt: color.RGBA{246, 246, 246, 255}, trousers: color.RGBA{40, 44, 70, 255}, hair: color.RGBA{20, 20, 20, 255}},
	{name: "Andrei", shirt: color.RGBA{200, 40, 160, 255}, trousers: color.RGBA{105, 105, 105, 255}, hair: color.RGBA{205, 105, 30, 255}, beard: true},
	{name: "Yevgeni", shirt: color.RGBA{115, 70, 35, 255}, trousers: color.RGBA{25, 25, 25, 255}, hair: color.RGBA{60, 45, 35, 255}, hat: true, coat: true},
}

type paint struct {
	name string
	rgb  color.RGBA
}

// colours of the objects, as the sentences name them.
var colours = []paint{
	{"yellow", color.RGBA{244, 204, 28, 255}},
	{"green", color.RGBA{46, 160, 64, 255}},
	{"blue", color.RGBA{40, 92, 214, 255}},
	{"red", color.RGBA{214, 38, 38, 255}},
}

var (
	walls  = []color.RGBA{{226, 216, 196, 255}, {204, 214, 224, 255}, {222, 206, 214, 255}, {210, 220, 200, 255}}
	floors = []color.RGBA{{150, 118, 88, 255}, {122, 122, 132, 255}, {172, 150, 118, 255}}
)

// element is one person or object. It is a comparable value: the two images
// of a pair are built from the same list of elements, and the ones that are
// not equal are the evidence.
type element struct {
	kind  kind
	label string
	who   *look
	col   color.RGBA
	// x is the horizontal centre; gy the ground line the element stands on.
	x, gy int
	// y places objects that do not stand on the floor (held, on a seat):
	// the bottom of a bag, the axis of a telescope.
	y     int
	scale int // percent
	face  int // +1 looks or points right, -1 left
	pose  pose
	// tripod: a telescope standing on the floor. A chair's back is on the
	// side opposite face.
	tripod bool
	handY  int // crouching: the height the hand reaches down to
}

func (e element) role() string {
	if e.kind == kPerson {
		return loader.RolePerson
	}
	return loader.RoleObject
}

// dims turns thousandths of the image side into pixels at the element's scale.
type dims struct{ size, scale int }

func (d dims) px(permille int) int { return permille * d.size * d.scale / 100000 }

func (e element) dims(size int) dims { return dims{size, e.scale} }

// Person geometry, in thousandths of the person's height.
func personHeight(size, scale int) int { return dims{size, scale}.px(460) }

func (e element) height(size int) int    { return personHeight(size, e.scale) }
func (e element) bodyWidth(size int) int { return e.height(size) * 30 / 100 }

// hand is where a person's free hand is.
func (e element) hand(size int) (int, int) {
	h, bw, d := e.height(size), e.bodyWidth(size), e.face
	switch e.pose {
	case holding:
		return e.x + d*(bw/2+h*18/100), e.gy - h*69/100
	case crouching:
		return e.x + d*h*34/100, e.handY
	}
	return e.x + d*(bw*20/100+h*3/100), e.gy - h*43/100
}

// Object sizes in thousandths of the image side at scale 100.
const (
	chairWidth  = 240
	seatHeight  = 170
	bagWidth    = 150
	bagHeight   = 110
	handleH     = 50
	tubeLength  = 210
	tubeThick   = 38
	bellLength  = 55
	bellThick   = 64
	tripodH     = 190
	plantWidth  = 150
	lampWidth   = 130
	personWidth = 420 // of the person's height: the slot a standing person needs, shoes included
)

// seat is where an object put on a chair rests: its centre x and the top of
// the seat.
func (e element) seat(size int) (int, int) {
	d := e.dims(size)
	return e.x + e.face*d.px(chairWidth)/10, e.gy - d.px(seatHeight)
}

// width is the horizontal room an element needs, for laying out a scene.
func (e element) width(size int) int {
	d := e.dims(size)
	switch e.kind {
	case kPerson:
		return e.height(size) * personWidth / 1000
	case kChair:
		return d.px(chairWidth)
	case kBag:
		return d.px(bagWidth)
	case kTelescope:
		return d.px(tubeLength + 2*bellLength)
	case kPlant:
		return d.px(plantWidth)
	}
	return d.px(lampWidth)
}

func (c *canvas) draw(e element) {
	switch e.kind {
	case kPerson:
		c.person(e)
	case kChair:
		c.chair(e)
	case kBag:
		c.bag(e)
	case kTelescope:
		c.telescope(e)
	case kPlant:
		c.plant(e)
	case kLamp:
		c.lamp(e)
	}
}

func (c *canvas) person(e element) {
	h, bw, d, x, y := e.height(c.size), e.bodyWidth(c.size), e.face, e.x, e.gy
	p := e.who
	sleeve := shade(p.shirt, 82)
	var hx, hy int
	// The legs and shoes, then the body, which differs by pose.
	c.rect(x-bw*42/100, y-h*45/100, x-bw*4/100, y, p.trousers)
	c.rect(x+bw*4/100, y-h*45/100, x+bw*42/100, y, p.trousers)
	c.rect(x-bw*42/100, y-h*4/100, x-bw*4/100+d*h*5/100, y, dark)
	c.rect(x+bw*4/100, y-h*4/100, x+bw*42/100+d*h*5/100, y, dark)
	if e.pose == crouching {
		// Bent over at the hips, head low in front, one arm hanging down to
		// the object: a silhouette no standing pose has.
		hip := y - h*43/100
		if p.coat {
			c.rect(x-bw/2, hip, x+bw/2, y-h*22/100, p.shirt)
		}
		c.rect(x-d*bw/2, hip-bw, x+d*h*40/100, hip+h*3/100, p.shirt)
		hx, hy = x+d*(h*40/100+h*7/100), hip-bw/2+h*2/100
		ax, ay := e.hand(c.size)
		c.rect(ax-d*h*9/100, hip-bw/2, ax, ay, sleeve)
		c.rect(ax-d*h*9/100, ay, ax, ay+h*5/100, skin)
	} else {
		bottom := y - h*42/100
		if p.coat {
			bottom = y - h*20/100
		}
		c.rect(x-bw/2, y-h*80/100, x+bw/2, bottom, p.shirt)
		hx, hy = x+d*h*2/100, y-h*89/100
		ax, ay := e.hand(c.size)
		if e.pose == holding {
			c.rect(x, y-h*73/100, ax, y-h*65/100, sleeve)
			c.rect(ax, y-h*74/100, ax+d*h*5/100, y-h*64/100, skin)
		} else {
			c.rect(ax-d*h*9/100, y-h*77/100, ax, ay, sleeve)
			c.rect(ax-d*h*9/100, ay, ax, ay+h*5/100, skin)
		}
	}
	c.rect(hx-h*3/100, hy, hx+h*3/100, hy+h*12/100, skin) // neck
	r := h * 95 / 1000
	c.ellipse(hx-d*r/5, hy-r/6, r+1, r, p.hair)
	c.ellipse(hx+d*r/6, hy+r/8, r*85/100, r*88/100, skin)
	if p.beard {
		c.ellipse(hx+d*r/5, hy+r*60/100, r*62/100, r*42/100, p.hair)
	}
	if p.hat {
		c.rect(hx-r*13/10, hy-r*9/10, hx+r*13/10, hy-r*6/10, dark)
		c.rect(hx-r*8/10, hy-r*21/10, hx+r*8/10, hy-r*8/10, dark)
	}
	eye := max(1, h/45)
	c.rect(hx+d*r/2, hy-eye/2, hx+d*r/2+d*eye, hy-eye/2+eye, dark)
}

func (c *canvas) chair(e element) {
	d := e.dims(c.size)
	w, x, y := d.px(chairWidth), e.x, e.gy
	top := y - d.px(seatHeight)
	th, lw := max(2, d.px(32)), max(2, d.px(26))
	legs := shade(e.col, 70)
	c.rect(x-w/2, top, x-w/2+lw, y, legs)
	c.rect(x+w/2-lw, top, x+w/2, y, legs)
	back := x - e.face*w/2
	c.rect(back, top-d.px(180), back+e.face*max(2, d.px(34)), top, e.col)
	c.rect(x-w/2, top, x+w/2, top+th, e.col)
}

func (c *canvas) bag(e element) {
	d := e.dims(c.size)
	w, h, x, y := d.px(bagWidth), d.px(bagHeight), e.x, e.y
	t := max(2, d.px(20))
	strap := shade(e.col, 58)
	top := y - h
	c.rect(x-w/4-t/2, top-d.px(handleH), x-w/4+t/2, top, strap)
	c.rect(x+w/4-t/2, top-d.px(handleH), x+w/4+t/2, top, strap)
	c.rect(x-w/4-t/2, top-d.px(handleH), x+w/4+t/2, top-d.px(handleH)+t, strap)
	c.rect(x-w/2, top, x+w/2, y, e.col)
	c.rect(x-w/2, top, x+w/2, top+h*28/100, shade(e.col, 80))
}

func (c *canvas) telescope(e element) {
	d := e.dims(c.size)
	l, x, y, f := d.px(tubeLength), e.x, e.y, e.face
	if e.tripod {
		leg := max(2, d.px(14))
		c.line(x, y, x-d.px(70), e.gy, leg, metal)
		c.line(x, y, x+d.px(70), e.gy, leg, metal)
		c.line(x, y, x+f*d.px(10), e.gy, leg, metal)
	}
	th, bt := max(3, d.px(tubeThick)), max(4, d.px(bellThick))
	c.rect(x-l/2, y-th/2, x+l/2, y-th/2+th, e.col)
	c.rect(x+f*l/2, y-bt/2, x+f*(l/2+d.px(bellLength)), y-bt/2+bt, shade(e.col, 72))
	c.rect(x-f*l/2, y-th/3, x-f*(l/2+d.px(28)), y-th/3+th*2/3, metal)
}

func (c *canvas) plant(e element) {
	d := e.dims(c.size)
	x, y := e.x, e.gy
	pw, ph := d.px(90), d.px(85)
	leaf := color.RGBA{34, 120, 48, 255}
	c.ellipse(x, y-ph-d.px(70), d.px(45), d.px(75), leaf)
	c.ellipse(x-d.px(45), y-ph-d.px(35), d.px(40), d.px(28), leaf)
	c.ellipse(x+d.px(45), y-ph-d.px(45), d.px(40), d.px(28), leaf)
	c.rect(x-pw/2, y-ph, x+pw/2, y, color.RGBA{186, 92, 52, 255})
	c.rect(x-pw/2-d.px(8), y-ph, x+pw/2+d.px(8), y-ph+d.px(18), color.RGBA{160, 76, 42, 255})
}

func (c *canvas) lamp(e element) {
	d := e.dims(c.size)
	x, y := e.x, e.gy
	c.rect(x-d.px(45), y-d.px(18), x+d.px(45), y, metal)
	c.rect(x-d.px(8), y-d.px(390), x+d.px(8), y, metal)
	c.rect(x-d.px(65), y-d.px(460), x+d.px(65), y-d.px(380), color.RGBA{250, 238, 196, 255})
}

// room is what lies behind the elements: the same in both images of a pair.
type room struct {
	wall, floor color.RGBA
	floorY      int
	decor       []decor
}

type decor struct {
	window     bool
	x, y, w, h int
	col        color.RGBA
}

func (c *canvas) room(r room) {
	s := c.size
	c.rect(0, 0, s, r.floorY, r.wall)
	c.rect(0, r.floorY, s, s, r.floor)
	c.rect(0, r.floorY-max(2, s/75), s, r.floorY, shade(r.wall, 70))
	for _, d := range r.decor {
		frame := max(2, s/75)
		if d.window {
			c.rect(d.x, d.y, d.x+d.w, d.y+d.h, color.RGBA{250, 250, 250, 255})
			c.rect(d.x+frame, d.y+frame, d.x+d.w-frame, d.y+d.h-frame, color.RGBA{168, 208, 238, 255})
			c.rect(d.x+d.w/2-frame/2, d.y, d.x+d.w/2-frame/2+frame, d.y+d.h, color.RGBA{250, 250, 250, 255})
			c.rect(d.x, d.y+d.h/2-frame/2, d.x+d.w, d.y+d.h/2-frame/2+frame, color.RGBA{250, 250, 250, 255})
		} else {
			c.rect(d.x, d.y, d.x+d.w, d.y+d.h, color.RGBA{92, 60, 40, 255})
			c.rect(d.x+frame, d.y+frame, d.x+d.w-frame, d.y+d.h-frame, d.col)
		}
	}
}

// render draws the room and the elements in order and returns the image and
// each element's box (what it drew, even where later elements cover it).
func render(size int, r room, els []element, mirror bool) (*image.RGBA, []image.Rectangle) {
	c := newCanvas(size)
	c.room(r)
	boxes := make([]image.Rectangle, len(els))
	for i, e := range els {
		c.begin()
		c.draw(e)
		boxes[i] = c.ext
	}
	if mirror {
		c.mirror()
		for i, b := range boxes {
			boxes[i] = image.Rect(size-b.Max.X, b.Min.Y, size-b.Min.X, b.Max.Y)
		}
	}
	return c.img, boxes
}
