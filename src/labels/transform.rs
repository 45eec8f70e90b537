//! Labels follow their image: when an image is cropped, scaled or cut into tiles (a crop per
//! chip), its labels are moved, scaled, clipped and split the same way.

use super::{clip_to_image, ImageLabels, ImageSize, Mask, Object, Pt, Shape};

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

/// A symmetry of the pixel grid (a flip or a quarter turn): pixel centre `(x, y)` goes to
/// `(xx * x + xy * y + dx, yx * x + yy * y + dy)`, the 2 x 2 part a signed permutation.
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
            dx: width as f64 - 1.0,
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
            dy: height as f64 - 1.0,
        }
    }

    /// `Image::rot90(1)` (a clockwise quarter turn) of a `height`-high image.
    pub fn quarter_turn(height: u32) -> Self {
        GridMap {
            xx: 0.0,
            xy: -1.0,
            yx: 1.0,
            yy: 0.0,
            dx: height as f64 - 1.0,
            dy: 0.0,
        }
    }

    fn point(&self, [x, y]: Pt) -> Pt {
        [
            self.xx * x + self.xy * y + self.dx,
            self.yx * x + self.yy * y + self.dy,
        ]
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
                let last = [
                    (mask.x + mask.width - 1) as f64,
                    (mask.y + mask.height - 1) as f64,
                ];
                let [x0, y0, ..] = corners([[mask.x as f64, mask.y as f64], last]);
                let (width, height) = if map.transposes() {
                    (mask.height, mask.width)
                } else {
                    (mask.width, mask.height)
                };
                let mut bits = vec![false; mask.bits.len()];
                for (i, bit) in mask.bits.iter().enumerate() {
                    let (x, y) = (i as u32 % mask.width, i as u32 / mask.width);
                    let [nx, ny] = map.point([(mask.x + x) as f64, (mask.y + y) as f64]);
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
            object.shape = object.shape.affine(sx, sy, 0.0, 0.0);
        }
        out
    }

    /// Circles drawn at `factor` of their radius, other shapes unchanged: crater targets
    /// narrower than the craters keep touching craters apart in a mask.
    pub fn circles_scaled(&self, factor: f64) -> ImageLabels {
        let mut out = self.clone();
        for object in &mut out.objects {
            if let Shape::Circle { r, .. } = &mut object.shape {
                *r *= factor;
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
            object.shape = object.shape.on_grid(map);
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

    fn moved(&self, dx: f64, dy: f64, width: u32, height: u32, name: &str) -> (ImageLabels, usize) {
        let size = ImageSize {
            width,
            height,
            depth: self.size.map_or(3, |s| s.depth),
        };
        let mut out = ImageLabels::new(name, Some(size));
        out.attributes = self.attributes.clone();
        for object in &self.objects {
            let shape = object.shape.affine(1.0, 1.0, dx, dy);
            let [x0, y0, x1, y1] = shape.bbox();
            if x1 < 0.0 || y1 < 0.0 || x0 > width as f64 || y0 > height as f64 {
                continue;
            }
            out.objects.push(Object {
                shape,
                ..object.clone()
            });
        }
        let clipped = clip_to_image(&mut out);
        (out, clipped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn flips_and_quarter_turns_move_every_kind_of_shape_as_the_pixels_move() {
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
        // An L of three pixels at (2, 3), (2, 4), (3, 4).
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
        // 100 x 60: a quarter turn sends (x, y) to (59 - y, x).
        let size = labels.size.unwrap();
        let turned = labels.turned(size, 1, "turned.png");
        assert_eq!(turned.size.unwrap().width, 60);
        assert_eq!(
            turned.objects[0].shape,
            Shape::Circle {
                cx: 39.0,
                cy: 20.0,
                r: 5.0
            }
        );
        assert_eq!(
            turned.objects[1].shape,
            Shape::Rect {
                x0: 9.0,
                y0: 60.0,
                x1: 49.0,
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
                x0: 9.0,
                y0: 10.0,
                x1: 39.0,
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
                cy: 39.0,
                r: 5.0
            }
        );
    }
}
