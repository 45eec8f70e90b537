//! Labels follow their image: when an image is cropped, scaled or cut into tiles (a crop per
//! chip), its labels are moved, scaled, clipped and split the same way.

use super::{clip_to_image, ImageLabels, ImageSize, Mask, Pt, Shape};

impl Shape {
    /// The shape under `x' = x * sx + dx, y' = y * sy + dy` (positive scales).
    pub fn affine(&self, sx: f64, sy: f64, dx: f64, dy: f64) -> Shape {
        let map = |[x, y]: [f64; 2]| [x * sx + dx, y * sy + dy];
        match self {
            Shape::Rect { x0, y0, x1, y1 } => {
                let ([a, b], [c, d]) = (map([*x0, *y0]), map([*x1, *y1]));
                Shape::Rect {
                    x0: a,
                    y0: b,
                    x1: c,
                    y1: d,
                }
            }
            Shape::Circle { cx, cy, r } if sx == sy => {
                let [x, y] = map([*cx, *cy]);
                Shape::Circle {
                    cx: x,
                    cy: y,
                    r: r * sx,
                }
            }
            Shape::Circle { cx, cy, r } => {
                let [x, y] = map([*cx, *cy]);
                Shape::Ellipse {
                    cx: x,
                    cy: y,
                    rx: r * sx,
                    ry: r * sy,
                    angle: 0.0,
                }
            }
            Shape::Ellipse {
                cx,
                cy,
                rx,
                ry,
                angle,
            } if sx == sy || angle.sin() == 0.0 => {
                let [x, y] = map([*cx, *cy]);
                let (rx, ry) = if angle.sin() == 0.0 {
                    (rx * sx, ry * sy)
                } else {
                    (rx * sx, ry * sx)
                };
                Shape::Ellipse {
                    cx: x,
                    cy: y,
                    rx,
                    ry,
                    angle: *angle,
                }
            }
            // A rotated ellipse stretched unevenly is no longer an axis-scaled ellipse.
            Shape::Ellipse { .. } => Shape::Polygon(
                self.to_polygon()
                    .unwrap_or_default()
                    .into_iter()
                    .map(map)
                    .collect(),
            ),
            Shape::Polygon(points) => Shape::Polygon(points.iter().copied().map(map).collect()),
            Shape::Polyline(points) => Shape::Polyline(points.iter().copied().map(map).collect()),
            Shape::Point(p) => Shape::Point(map(*p)),
            Shape::Mask(mask) => Shape::Mask(resample(mask, sx, sy, dx, dy)),
        }
    }
}

/// A symmetry of the pixel grid (a flip or a quarter turn): the point `(x, y)` goes to
/// `(xx * x + xy * y + dx, yx * x + yy * y + dy)`, the 2 x 2 part a signed permutation. Points
/// are positions on the image (a `width`-wide mirror sends x to `width - x`, so a box on the
/// left edge lands on the right one), which sends pixel `i` to pixel `width - 1 - i`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GridMap {
    xx: f64,
    xy: f64,
    yx: f64,
    yy: f64,
    dx: f64,
    dy: f64,
}

impl GridMap {
    const IDENTITY: GridMap = GridMap {
        xx: 1.0,
        xy: 0.0,
        yx: 0.0,
        yy: 1.0,
        dx: 0.0,
        dy: 0.0,
    };

    /// `Image::flip_horizontal` of a `width`-wide image.
    pub fn flip_horizontal(width: u32) -> Self {
        GridMap {
            xx: -1.0,
            xy: 0.0,
            yx: 0.0,
            yy: 1.0,
            dx: width as f64,
            dy: 0.0,
        }
    }

    /// `Image::flip_vertical` of a `height`-high image.
    pub fn flip_vertical(height: u32) -> Self {
        GridMap {
            xx: 1.0,
            xy: 0.0,
            yx: 0.0,
            yy: -1.0,
            dx: 0.0,
            dy: height as f64,
        }
    }

    /// `Image::rot90(1)` (a clockwise quarter turn) of a `height`-high image.
    pub fn quarter_turn(height: u32) -> Self {
        GridMap {
            xx: 0.0,
            xy: -1.0,
            yx: 1.0,
            yy: 0.0,
            dx: height as f64,
            dy: 0.0,
        }
    }

    fn point(&self, [x, y]: Pt) -> Pt {
        [
            self.xx * x + self.xy * y + self.dx,
            self.yx * x + self.yy * y + self.dy,
        ]
    }

    /// Where pixel `(x, y)` goes (its centre, half a pixel in from its corner, mapped).
    fn pixel(&self, x: u32, y: u32) -> [f64; 2] {
        let [x, y] = self.point([x as f64 + 0.5, y as f64 + 0.5]);
        [x - 0.5, y - 0.5]
    }

    /// Whether x and y trade places (a quarter turn).
    fn transposes(&self) -> bool {
        self.xx == 0.0
    }
}

impl Shape {
    /// The shape under a flip or quarter turn of its image: exact for every kind.
    pub fn on_grid(&self, map: &GridMap) -> Shape {
        let corners = |[a, b]: [Pt; 2]| {
            let ([x0, y0], [x1, y1]) = (map.point(a), map.point(b));
            [x0.min(x1), y0.min(y1), x0.max(x1), y0.max(y1)]
        };
        match self {
            Shape::Rect { x0, y0, x1, y1 } => {
                let [x0, y0, x1, y1] = corners([[*x0, *y0], [*x1, *y1]]);
                Shape::Rect { x0, y0, x1, y1 }
            }
            Shape::Circle { cx, cy, r } => {
                let [cx, cy] = map.point([*cx, *cy]);
                Shape::Circle { cx, cy, r: *r }
            }
            Shape::Ellipse {
                cx,
                cy,
                rx,
                ry,
                angle,
            } => {
                let [cx, cy] = map.point([*cx, *cy]);
                // The x radius's direction, mapped like any vector.
                let (c, s) = (angle.cos(), angle.sin());
                let angle = (map.yx * c + map.yy * s).atan2(map.xx * c + map.xy * s);
                Shape::Ellipse {
                    cx,
                    cy,
                    rx: *rx,
                    ry: *ry,
                    angle,
                }
            }
            Shape::Polygon(points) => {
                Shape::Polygon(points.iter().map(|p| map.point(*p)).collect())
            }
            Shape::Polyline(points) => {
                Shape::Polyline(points.iter().map(|p| map.point(*p)).collect())
            }
            Shape::Point(p) => Shape::Point(map.point(*p)),
            Shape::Mask(mask) => {
                let first = map.pixel(mask.x, mask.y);
                let last = map.pixel(mask.x + mask.width - 1, mask.y + mask.height - 1);
                let (x0, y0) = (first[0].min(last[0]), first[1].min(last[1]));
                let (width, height) = if map.transposes() {
                    (mask.height, mask.width)
                } else {
                    (mask.width, mask.height)
                };
                let mut bits = vec![false; mask.bits.len()];
                for (i, bit) in mask.bits.iter().enumerate() {
                    let (x, y) = (i as u32 % mask.width, i as u32 / mask.width);
                    let [nx, ny] = map.pixel(mask.x + x, mask.y + y);
                    let (nx, ny) = ((nx - x0) as usize, (ny - y0) as usize);
                    bits[ny * width as usize + nx] = *bit;
                }
                Shape::Mask(Mask {
                    x: x0 as u32,
                    y: y0 as u32,
                    width,
                    height,
                    bits,
                })
            }
        }
    }
}

/// A turn and uniform scale of an image onto a canvas: the point `p` goes to
/// `to + scale * R (p - from)`, R turning counter-clockwise on screen (where y points down)
/// by `degrees`. With `from` and `to` the two canvases' centres (plus any shift), as
/// positions on the image (`raster::centre` + half a pixel), this is how
/// `raster::Image::transformed` places its pixel centres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Warp {
    pub degrees: f64,
    pub scale: f64,
    pub from: Pt,
    pub to: Pt,
}

impl Warp {
    /// The 2 x 2 part, row-major.
    fn linear(&self) -> [f64; 4] {
        let (sin, cos) = self.degrees.to_radians().sin_cos();
        let s = self.scale;
        [s * cos, s * sin, -s * sin, s * cos]
    }

    fn vector(&self, [x, y]: Pt) -> Pt {
        let [a, b, c, d] = self.linear();
        [a * x + b * y, c * x + d * y]
    }

    fn point(&self, [x, y]: Pt) -> Pt {
        let [vx, vy] = self.vector([x - self.from[0], y - self.from[1]]);
        [self.to[0] + vx, self.to[1] + vy]
    }

    /// Where the point `p` came from.
    fn source(&self, [x, y]: Pt) -> Pt {
        let back = Warp {
            degrees: -self.degrees,
            scale: 1.0 / self.scale,
            from: self.to,
            to: self.from,
        };
        back.point([x, y])
    }

    /// Whether boxes stay upright (whole quarter turns, up to rounding noise).
    fn keeps_boxes_upright(&self) -> bool {
        let (sin, cos) = self.degrees.to_radians().sin_cos();
        (sin * cos).abs() < 1e-9
    }
}

impl Shape {
    /// The shape under a turn and scale of its image. Circles, ellipses and outlines are
    /// exact; a box turned by other than quarter turns becomes its four corners as a polygon
    /// (box formats write its bounding box); masks are resampled nearest-neighbour.
    pub fn warped(&self, warp: &Warp) -> Shape {
        let points = |points: &[Pt]| points.iter().map(|p| warp.point(*p)).collect();
        match self {
            Shape::Rect { x0, y0, x1, y1 } => {
                let corners: Vec<Pt> = points(&[[*x0, *y0], [*x1, *y0], [*x1, *y1], [*x0, *y1]]);
                if warp.keeps_boxes_upright() {
                    let [x0, y0, x1, y1] = Shape::Polygon(corners).bbox();
                    Shape::Rect { x0, y0, x1, y1 }
                } else {
                    Shape::Polygon(corners)
                }
            }
            Shape::Circle { cx, cy, r } => {
                let [cx, cy] = warp.point([*cx, *cy]);
                Shape::Circle {
                    cx,
                    cy,
                    r: r * warp.scale,
                }
            }
            Shape::Ellipse {
                cx,
                cy,
                rx,
                ry,
                angle,
            } => {
                let [cx, cy] = warp.point([*cx, *cy]);
                let [dx, dy] = warp.vector([angle.cos(), angle.sin()]);
                Shape::Ellipse {
                    cx,
                    cy,
                    rx: rx * warp.scale,
                    ry: ry * warp.scale,
                    angle: dy.atan2(dx),
                }
            }
            Shape::Polygon(p) => Shape::Polygon(points(p)),
            Shape::Polyline(p) => Shape::Polyline(points(p)),
            Shape::Point(p) => Shape::Point(warp.point(*p)),
            Shape::Mask(mask) => Shape::Mask(warp_mask(mask, warp)),
        }
    }
}

/// Nearest-neighbour resampling of a mask under a warp: every pixel whose centre is in the
/// warped mask's box (the part right of and below the canvas origin) takes the bit it came
/// from.
fn warp_mask(mask: &Mask, warp: &Warp) -> Mask {
    let (left, right) = (mask.x as f64, (mask.x + mask.width) as f64);
    let (top, bottom) = (mask.y as f64, (mask.y + mask.height) as f64);
    let corners = [[left, top], [right, top], [right, bottom], [left, bottom]];
    let [x0, y0, x1, y1] = Shape::Polygon(corners.map(|p| warp.point(p)).to_vec()).bbox();
    // The pixels whose centres (i + 0.5) are inside the box; the tolerance keeps a quarter
    // turn's edges, which land on whole pixels, from losing a row to rounding noise.
    let first = |edge: f64| (edge - 0.5 - 1e-6).ceil().max(0.0);
    let last = |edge: f64| (edge - 0.5 + 1e-6).floor();
    let (origin_x, origin_y) = (first(x0), first(y0));
    let width = (last(x1) - origin_x + 1.0).max(1.0) as u32;
    let height = (last(y1) - origin_y + 1.0).max(1.0) as u32;
    let mut bits = Vec::with_capacity(width as usize * height as usize);
    for y in 0..height {
        for x in 0..width {
            let centre = [origin_x + x as f64 + 0.5, origin_y + y as f64 + 0.5];
            let [sx, sy] = warp.source(centre);
            let (sx, sy) = (
                (sx - 0.5).round() - mask.x as f64,
                (sy - 0.5).round() - mask.y as f64,
            );
            let inside =
                sx >= 0.0 && sy >= 0.0 && sx < mask.width as f64 && sy < mask.height as f64;
            bits.push(inside && mask.bits[sy as usize * mask.width as usize + sx as usize]);
        }
    }
    Mask {
        x: origin_x as u32,
        y: origin_y as u32,
        width,
        height,
        bits,
    }
}

/// Nearest-neighbour resampling of a mask under the same mapping.
fn resample(mask: &Mask, sx: f64, sy: f64, dx: f64, dy: f64) -> Mask {
    let left = (mask.x as f64 * sx + dx).round();
    let top = (mask.y as f64 * sy + dy).round();
    let width = ((mask.width as f64 * sx).round() as u32).max(1);
    let height = ((mask.height as f64 * sy).round() as u32).max(1);
    let mut bits = Vec::with_capacity(width as usize * height as usize);
    for y in 0..height {
        for x in 0..width {
            let source_x = (((x as f64 + 0.5) / sx) as u32).min(mask.width - 1);
            let source_y = (((y as f64 + 0.5) / sy) as u32).min(mask.height - 1);
            bits.push(mask.bits[(source_y * mask.width + source_x) as usize]);
        }
    }
    // Parts moved left of or above the image are cut off.
    let (cut_x, cut_y) = ((-left).max(0.0) as u32, (-top).max(0.0) as u32);
    if cut_x >= width || cut_y >= height {
        return Mask {
            x: 0,
            y: 0,
            width: 1,
            height: 1,
            bits: vec![false],
        };
    }
    let (kept_w, kept_h) = (width - cut_x, height - cut_y);
    let kept = (cut_y..height)
        .flat_map(|y| (cut_x..width).map(move |x| (x, y)))
        .map(|(x, y)| bits[(y * width + x) as usize])
        .collect();
    Mask {
        x: left.max(0.0) as u32,
        y: top.max(0.0) as u32,
        width: kept_w,
        height: kept_h,
        bits: kept,
    }
}

impl ImageLabels {
    /// The labels of the image scaled by `sx`, `sy` (its new size rounded as the image's).
    pub fn scaled(&self, sx: f64, sy: f64) -> ImageLabels {
        let mut out = self.clone();
        out.size = self.size.map(|s| ImageSize {
            width: (s.width as f64 * sx).round() as u32,
            height: (s.height as f64 * sy).round() as u32,
            depth: s.depth,
        });
        for object in &mut out.objects {
            *object = object.reshaped(object.shape.affine(sx, sy, 0.0, 0.0));
        }
        out
    }

    /// Circles drawn at `factor` of their radius, other shapes unchanged: crater targets
    /// narrower than the craters keep touching craters apart in a mask.
    pub fn circles_scaled(&self, factor: f64) -> ImageLabels {
        let mut out = self.clone();
        for object in &mut out.objects {
            if let Shape::Circle { cx, cy, r } = object.shape {
                *object = object.reshaped(Shape::Circle {
                    cx,
                    cy,
                    r: r * factor,
                });
            }
        }
        out
    }

    /// The labels of an image of `size` mirrored left to right (`vertical`: top to bottom).
    pub fn flipped(&self, size: ImageSize, vertical: bool, name: &str) -> ImageLabels {
        let map = if vertical {
            GridMap::flip_vertical(size.height)
        } else {
            GridMap::flip_horizontal(size.width)
        };
        self.on_grid(&map, size, name)
    }

    /// The labels of an image of `size` turned clockwise by `quarters` quarter turns.
    pub fn turned(&self, size: ImageSize, quarters: u32, name: &str) -> ImageLabels {
        let mut out = self.on_grid(&GridMap::IDENTITY, size, name);
        for _ in 0..quarters % 4 {
            let size = out.size.expect("set by on_grid");
            let turned = ImageSize {
                width: size.height,
                height: size.width,
                depth: size.depth,
            };
            out = out.on_grid(&GridMap::quarter_turn(size.height), turned, name);
        }
        out
    }

    fn on_grid(&self, map: &GridMap, size: ImageSize, name: &str) -> ImageLabels {
        let mut out = self.clone();
        out.image = name.to_string();
        out.size = Some(size);
        for object in &mut out.objects {
            *object = object.reshaped(object.shape.on_grid(map));
        }
        out
    }

    /// The labels of the window `x, y, width, height` of the image: shapes moved into the
    /// window's coordinates, those outside it dropped, those across its edge clipped. Returns
    /// the labels and how many shapes were clipped.
    pub fn cropped(
        &self,
        x: u32,
        y: u32,
        width: u32,
        height: u32,
        name: &str,
    ) -> (ImageLabels, usize) {
        let (mut out, clipped) = self.moved(-(x as f64), -(y as f64), width, height, name);
        out.attributes
            .insert("source_image".into(), self.image.clone());
        out.attributes
            .insert("source_window".into(), format!("{x},{y},{width},{height}"));
        (out, clipped)
    }

    /// The labels of the image shifted by `dx`, `dy` on a canvas of its size (what
    /// `Image::translate` does): shapes moved out of it dropped, those across its edge
    /// clipped. Returns the labels and how many shapes were clipped.
    pub fn translated(&self, dx: i64, dy: i64, name: &str) -> (ImageLabels, usize) {
        let size = self.size.unwrap_or(ImageSize {
            width: u32::MAX,
            height: u32::MAX,
            depth: 3,
        });
        self.moved(dx as f64, dy as f64, size.width, size.height, name)
    }

    /// The labels of the image turned and scaled by `warp` onto a `width` x `height` canvas
    /// (what `prep rotate` and `prep align --rotation` do): shapes moved out of it dropped,
    /// those across its edge clipped. Returns the labels and how many shapes were clipped.
    pub fn warped(&self, warp: &Warp, width: u32, height: u32, name: &str) -> (ImageLabels, usize) {
        self.placed(width, height, name, |shape| shape.warped(warp))
    }

    fn moved(&self, dx: f64, dy: f64, width: u32, height: u32, name: &str) -> (ImageLabels, usize) {
        self.placed(width, height, name, |shape| shape.affine(1.0, 1.0, dx, dy))
    }

    /// The labels on a `width` x `height` canvas, each shape mapped by `map`: those that land
    /// outside dropped, those across the edge clipped.
    fn placed(
        &self,
        width: u32,
        height: u32,
        name: &str,
        map: impl Fn(&Shape) -> Shape,
    ) -> (ImageLabels, usize) {
        let size = ImageSize {
            width,
            height,
            depth: self.size.map_or(3, |s| s.depth),
        };
        let mut out = ImageLabels::new(name, Some(size));
        out.attributes = self.attributes.clone();
        out.objects = self
            .objects
            .iter()
            .map(|object| object.reshaped(map(&object.shape)))
            .collect();
        let clipped = clip_to_image(&mut out).clipped;
        (out, clipped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Object;

    fn image() -> ImageLabels {
        let mut labels = ImageLabels::new(
            "scene.png",
            Some(ImageSize {
                width: 100,
                height: 60,
                depth: 1,
            }),
        );
        labels.objects.push(Object::new(
            "crater",
            Shape::Circle {
                cx: 20.0,
                cy: 20.0,
                r: 5.0,
            },
        ));
        labels.objects.push(Object::new(
            "dark dune",
            Shape::Rect {
                x0: 60.0,
                y0: 10.0,
                x1: 90.0,
                y1: 50.0,
            },
        ));
        labels
    }

    #[test]
    fn circles_shrink_about_their_centres_and_other_shapes_stay() {
        let narrow = image().circles_scaled(0.6);
        assert_eq!(
            narrow.objects[0].shape,
            Shape::Circle {
                cx: 20.0,
                cy: 20.0,
                r: 3.0
            }
        );
        assert_eq!(narrow.objects[1].shape, image().objects[1].shape);
        assert_eq!(narrow.size, image().size);
    }

    #[test]
    fn scaling_moves_and_resizes_every_shape() {
        let half = image().scaled(0.5, 0.5);
        assert_eq!(
            half.size,
            Some(ImageSize {
                width: 50,
                height: 30,
                depth: 1
            })
        );
        assert_eq!(
            half.objects[0].shape,
            Shape::Circle {
                cx: 10.0,
                cy: 10.0,
                r: 2.5
            }
        );
        assert_eq!(
            half.objects[1].shape,
            Shape::Rect {
                x0: 30.0,
                y0: 5.0,
                x1: 45.0,
                y1: 25.0
            }
        );
        let stretched = image().scaled(2.0, 1.0);
        assert_eq!(
            stretched.objects[0].shape,
            Shape::Ellipse {
                cx: 40.0,
                cy: 20.0,
                rx: 10.0,
                ry: 5.0,
                angle: 0.0
            }
        );
        let mask = Shape::Mask(Mask {
            x: 2,
            y: 2,
            width: 2,
            height: 1,
            bits: vec![true, false],
        });
        let shifted = mask.affine(1.0, 1.0, -3.0, -2.0);
        assert_eq!(
            shifted,
            Shape::Mask(Mask {
                x: 0,
                y: 0,
                width: 1,
                height: 1,
                bits: vec![false]
            }),
            "the left pixel is cut off"
        );
        assert_eq!(
            mask.affine(2.0, 2.0, 0.0, 0.0),
            Shape::Mask(Mask {
                x: 4,
                y: 4,
                width: 4,
                height: 2,
                bits: vec![true, true, false, false, true, true, false, false]
            })
        );
    }

    #[test]
    fn crops_keep_clip_and_drop() {
        let (window, clipped) = image().cropped(50, 0, 30, 30, "w.png");
        assert_eq!(window.objects.len(), 1, "the crater is outside the window");
        assert_eq!(
            window.objects[0].shape,
            Shape::Rect {
                x0: 10.0,
                y0: 10.0,
                x1: 30.0,
                y1: 30.0
            }
        );
        assert_eq!(clipped, 1);
        assert_eq!(window.attributes["source_window"], "50,0,30,30");
    }

    #[test]
    fn translated_labels_move_with_the_image_and_what_leaves_it_is_dropped_or_clipped() {
        let labels = image();
        let (moved, clipped) = labels.translated(-18, 4, "moved.png");
        assert_eq!(moved.image, "moved.png");
        assert_eq!(moved.size, labels.size, "the canvas keeps its size");
        // The crater at (20, 20) r 5 now spans x 0..7 after clipping at the left edge.
        let crater = &moved.objects[0];
        assert_eq!(crater.shape.bbox()[1], 19.0);
        assert!(clipped >= 1, "the crater crossed the left edge");
        let (gone, _) = labels.translated(200, 0, "gone.png");
        assert!(gone.objects.is_empty(), "everything moved off the canvas");
    }

    /// `image()` plus an ellipse and a mask: an L of three pixels at (2, 3), (2, 4), (3, 4).
    fn every_kind() -> ImageLabels {
        let mut labels = image();
        labels.objects.push(Object::new(
            "dark dune",
            Shape::Ellipse {
                cx: 50.0,
                cy: 30.0,
                rx: 8.0,
                ry: 3.0,
                angle: 0.3,
            },
        ));
        labels.objects.push(Object::new(
            "crater",
            Shape::Mask(Mask {
                x: 2,
                y: 3,
                width: 2,
                height: 2,
                bits: vec![true, false, true, true],
            }),
        ));
        labels
    }

    #[test]
    fn flips_and_quarter_turns_move_every_kind_of_shape_as_the_pixels_move() {
        let labels = every_kind();
        // 100 x 60: a quarter turn sends the point (x, y) to (60 - y, x), pixel (i, j) to
        // pixel (59 - j, i).
        let size = labels.size.unwrap();
        let turned = labels.turned(size, 1, "turned.png");
        assert_eq!(turned.size.unwrap().width, 60);
        assert_eq!(
            turned.objects[0].shape,
            Shape::Circle {
                cx: 40.0,
                cy: 20.0,
                r: 5.0
            }
        );
        assert_eq!(
            turned.objects[1].shape,
            Shape::Rect {
                x0: 10.0,
                y0: 60.0,
                x1: 50.0,
                y1: 90.0
            }
        );
        let Shape::Ellipse { angle, .. } = turned.objects[2].shape else {
            panic!("an ellipse stays one")
        };
        assert!((angle - (0.3 + std::f64::consts::FRAC_PI_2)).abs() < 1e-12);
        // The L's pixels (2, 3), (2, 4), (3, 4) land on (56, 2), (55, 2), (55, 3).
        assert_eq!(
            turned.objects[3].shape,
            Shape::Mask(Mask {
                x: 55,
                y: 2,
                width: 2,
                height: 2,
                bits: vec![true, true, true, false],
            })
        );
        let round_trip = labels.turned(size, 4, "scene.png");
        assert_eq!(round_trip.objects, labels.objects, "four quarter turns");
        let back = turned.turned(turned.size.unwrap(), 3, "scene.png");
        for (a, b) in back.objects.iter().zip(&labels.objects) {
            match (&a.shape, &b.shape) {
                (Shape::Ellipse { angle: p, .. }, Shape::Ellipse { angle: q, .. }) => {
                    assert!((p.sin() - q.sin()).abs() < 1e-12 && (p.cos() - q.cos()).abs() < 1e-12)
                }
                (a, b) => assert_eq!(a, b),
            }
        }
        let flipped = labels.flipped(size, false, "f.png");
        assert_eq!(
            flipped.objects[1].shape,
            Shape::Rect {
                x0: 10.0,
                y0: 10.0,
                x1: 40.0,
                y1: 50.0
            }
        );
        assert_eq!(
            flipped.flipped(size, false, "scene.png").objects,
            labels.objects
        );
        let upside_down = labels.flipped(size, true, "v.png");
        assert_eq!(
            upside_down.objects[0].shape,
            Shape::Circle {
                cx: 20.0,
                cy: 40.0,
                r: 5.0
            }
        );
    }

    /// The turn of the 100 x 60 test image by `degrees` about its centre onto a canvas of
    /// `width` x `height`, as `Image::rotate` places pixel centres.
    fn turn(degrees: f64, width: u32, height: u32) -> Warp {
        Warp {
            degrees,
            scale: 1.0,
            from: [50.0, 30.0],
            to: [width as f64 / 2.0, height as f64 / 2.0],
        }
    }

    #[test]
    fn a_warp_by_whole_quarter_turns_is_the_exact_grid_turn() {
        let labels = every_kind();
        let size = labels.size.unwrap();
        // 90 degrees counter-clockwise onto the grown 60 x 100 canvas: three clockwise turns.
        let (warped, clipped) = labels.warped(&turn(90.0, 60, 100), 60, 100, "w.png");
        let turned = labels.turned(size, 3, "w.png");
        assert_eq!(clipped, 0);
        assert_eq!(warped.size, turned.size);
        for (a, b) in warped.objects.iter().zip(&turned.objects) {
            match (&a.shape, &b.shape) {
                (Shape::Mask(a), Shape::Mask(b)) => assert_eq!(a, b),
                (Shape::Ellipse { angle: p, .. }, Shape::Ellipse { angle: q, .. }) => {
                    assert!((p.sin() - q.sin()).abs() < 1e-9 && (p.cos() - q.cos()).abs() < 1e-9)
                }
                (a, b) => {
                    let (a, b) = (a.bbox(), b.bbox());
                    assert!(
                        a.iter().zip(&b).all(|(p, q)| (p - q).abs() < 1e-9),
                        "{a:?} {b:?}"
                    );
                }
            }
        }
        assert!(
            matches!(warped.objects[1].shape, Shape::Rect { .. }),
            "boxes stay boxes"
        );
    }

    #[test]
    fn a_turn_by_any_angle_moves_points_about_the_centre_counter_clockwise_on_screen() {
        // 30 degrees about (50, 30), same canvas: a point 10 px right of the centre goes
        // to (50 + 10 cos 30, 30 - 10 sin 30) = (58.660, 25): up, as y points down.
        let warp = turn(30.0, 100, 60);
        let [x, y] = warp.point([60.0, 30.0]);
        assert!(
            (x - 58.660_254).abs() < 1e-6 && (y - 25.0).abs() < 1e-9,
            "{x} {y}"
        );
        let [bx, by] = warp.source([x, y]);
        assert!((bx - 60.0).abs() < 1e-9 && (by - 30.0).abs() < 1e-9);

        let labels = image();
        let (warped, _) = labels.warped(&warp, 100, 60, "w.png");
        // The box 60..90 x 10..50 becomes its four corners turned: (60, 10) is 10 right of
        // and 20 above the centre, so it goes to (50 + 10 cos 30 - 20 sin 30,
        // 30 - 10 sin 30 - 20 cos 30) = (48.660, 7.679).
        let Shape::Polygon(corners) = &warped.objects[1].shape else {
            panic!("a turned box is a polygon: {:?}", warped.objects[1].shape)
        };
        assert_eq!(corners.len(), 4);
        assert!((corners[0][0] - 48.660_3).abs() < 1e-3, "{corners:?}");
        assert!((corners[0][1] - 7.679_5).abs() < 1e-3, "{corners:?}");
        // A circle keeps its radius; its centre turns like any point.
        let Shape::Circle { cx, cy, r } = warped.objects[0].shape else {
            panic!("a circle stays one")
        };
        let [ex, ey] = warp.point([20.0, 20.0]);
        assert_eq!((cx, cy, r), (ex, ey, 5.0));

        // An ellipse's axis turns with it, and a scale grows both radii.
        let ellipse = Shape::Ellipse {
            cx: 49.5,
            cy: 29.5,
            rx: 8.0,
            ry: 3.0,
            angle: 0.0,
        };
        let Shape::Ellipse { rx, ry, angle, .. } = ellipse.warped(&Warp { scale: 2.0, ..warp })
        else {
            panic!("an ellipse stays one")
        };
        assert_eq!((rx, ry), (16.0, 6.0));
        assert!((angle + 30f64.to_radians()).abs() < 1e-12, "{angle}");
    }

    #[test]
    fn a_turned_mask_keeps_its_pixels_and_what_leaves_the_canvas_is_dropped() {
        // A 3 x 1 bar through the centre (50.5, 50.5) of a 101 x 101 image, turned 45
        // degrees: its three pixels land on the diagonal (49, 51), (50, 50), (51, 49).
        let mut labels = ImageLabels::new(
            "s.png",
            Some(ImageSize {
                width: 101,
                height: 101,
                depth: 1,
            }),
        );
        labels.objects.push(Object::new(
            "crater",
            Shape::Mask(Mask {
                x: 49,
                y: 50,
                width: 3,
                height: 1,
                bits: vec![true; 3],
            }),
        ));
        labels.objects.push(Object::new(
            "crater",
            Shape::Circle {
                cx: 2.0,
                cy: 50.0,
                r: 1.0,
            },
        ));
        let warp = Warp {
            degrees: 45.0,
            scale: 1.0,
            from: [50.5, 50.5],
            to: [50.5, 50.5],
        };
        let (warped, _) = labels.warped(&warp, 101, 101, "w.png");
        let Shape::Mask(mask) = &warped.objects[0].shape else {
            panic!("a mask stays one")
        };
        let on: Vec<(u32, u32)> = mask
            .bits
            .iter()
            .enumerate()
            .filter(|(_, b)| **b)
            .map(|(i, _)| {
                (
                    mask.x + i as u32 % mask.width,
                    mask.y + i as u32 / mask.width,
                )
            })
            .collect();
        assert_eq!(on, vec![(51, 49), (50, 50), (49, 51)]);
        // The circle 48.5 px left of the centre goes to (15.85, 84.44): still on the canvas.
        assert_eq!(warped.objects.len(), 2);
        // With the centre moved 30 px left, it lands at (-14.15, 84.44), off the canvas,
        // and is dropped; the bar stays.
        let away = Warp {
            to: [20.5, 50.5],
            ..warp
        };
        let (warped, _) = labels.warped(&away, 101, 101, "w.png");
        assert_eq!(warped.objects.len(), 1, "{:?}", warped.objects);
        assert!(matches!(warped.objects[0].shape, Shape::Mask(_)));
    }
}
