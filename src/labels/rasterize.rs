//! Shapes into masks: semantic (pixel = class id, 0 background) and instance (pixel = object
//! number). Shapes are painted in file order, so later shapes win; outlines are included.
//! Pixel `(i, j)` is covered when its centre `(i, j)` is inside a shape, as PIL and LabelMe
//! count it, plus the pixels a line between the shape's vertices passes through. Polygon
//! vertices are truncated to whole pixels first, as PIL does.

use super::{ClassMap, ImageLabels, ImageSize, LabelError, Pt, Shape};

/// A single-channel raster, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Raster<T> {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<T>,
}

impl<T: Copy + Default> Raster<T> {
    pub fn new(width: u32, height: u32) -> Self {
        Raster {
            width,
            height,
            pixels: vec![T::default(); width as usize * height as usize],
        }
    }

    fn set(&mut self, x: i64, y: i64, value: T) {
        if x >= 0 && y >= 0 && (x as u32) < self.width && (y as u32) < self.height {
            self.pixels[y as usize * self.width as usize + x as usize] = value;
        }
    }

    pub fn get(&self, x: u32, y: u32) -> T {
        self.pixels[y as usize * self.width as usize + x as usize]
    }

    /// Fills rows `y0..=y1` between `x` bounds given per row by `span`.
    fn fill_rows(&mut self, y0: f64, y1: f64, value: T, span: impl Fn(f64) -> Option<(f64, f64)>) {
        let first = y0.ceil().max(0.0) as i64;
        let last = y1.floor().min(self.height as f64 - 1.0) as i64;
        for y in first..=last {
            if let Some((a, b)) = span(y as f64) {
                let (from, to) = (
                    a.ceil().max(0.0) as i64,
                    b.floor().min(self.width as f64 - 1.0) as i64,
                );
                for x in from..=to {
                    self.set(x, y, value);
                }
            }
        }
    }

    /// A one-pixel line between two points (Bresenham on the rounded ends).
    fn line(&mut self, [ax, ay]: Pt, [bx, by]: Pt, value: T) {
        let (mut x, mut y) = (ax.round() as i64, ay.round() as i64);
        let (x1, y1) = (bx.round() as i64, by.round() as i64);
        let (dx, dy) = ((x1 - x).abs(), -(y1 - y).abs());
        let (sx, sy) = (if x < x1 { 1 } else { -1 }, if y < y1 { 1 } else { -1 });
        let mut err = dx + dy;
        loop {
            self.set(x, y, value);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// Vertices are first truncated to whole pixels, as PIL's `ImageDraw.polygon` does, so
    /// the masks match the ones LabelMe's tools made (the ones the Mars team trained on).
    fn polygon(&mut self, points: &[Pt], value: T) {
        if points.is_empty() {
            return;
        }
        let points: Vec<Pt> = points.iter().map(|[x, y]| [x.trunc(), y.trunc()]).collect();
        let points = &points[..];
        let (y0, y1) = points
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
                (a.min(p[1]), b.max(p[1]))
            });
        let first = y0.ceil().max(0.0) as i64;
        let last = y1.floor().min(self.height as f64 - 1.0) as i64;
        let mut crossings = Vec::new();
        for y in first..=last {
            let y = y as f64;
            crossings.clear();
            for i in 0..points.len() {
                let ([xa, ya], [xb, yb]) = (points[i], points[(i + 1) % points.len()]);
                // Half-open in y, so a vertex on the row is counted once.
                if (ya <= y && y < yb) || (yb <= y && y < ya) {
                    crossings.push(xa + (y - ya) * (xb - xa) / (yb - ya));
                }
            }
            crossings.sort_by(f64::total_cmp);
            for pair in crossings.chunks_exact(2) {
                let (from, to) = (
                    pair[0].ceil().max(0.0) as i64,
                    pair[1].floor().min(self.width as f64 - 1.0) as i64,
                );
                for x in from..=to {
                    self.set(x, y as i64, value);
                }
            }
        }
        for i in 0..points.len() {
            self.line(points[i], points[(i + 1) % points.len()], value);
        }
    }

    /// Paints one shape.
    pub fn paint(&mut self, shape: &Shape, value: T) {
        match shape {
            Shape::Rect { .. } => {
                let [x0, y0, x1, y1] = shape.bbox();
                self.fill_rows(y0, y1, value, |_| Some((x0, x1)));
            }
            Shape::Circle { cx, cy, r } => self.ellipse(*cx, *cy, *r, *r, 0.0, value),
            Shape::Ellipse {
                cx,
                cy,
                rx,
                ry,
                angle,
            } => self.ellipse(*cx, *cy, *rx, *ry, *angle, value),
            Shape::Polygon(points) => self.polygon(points, value),
            Shape::Polyline(points) => {
                for pair in points.windows(2) {
                    self.line(pair[0], pair[1], value);
                }
                if let [only] = points[..] {
                    self.line(only, only, value);
                }
            }
            Shape::Point(p) => self.line(*p, *p, value),
            Shape::Mask(mask) => {
                for (i, bit) in mask.bits.iter().enumerate() {
                    if *bit {
                        let (x, y) = (i as u32 % mask.width, i as u32 / mask.width);
                        self.set((mask.x + x) as i64, (mask.y + y) as i64, value);
                    }
                }
            }
        }
    }

    /// Pixel centres inside the (rotated) ellipse, and at least the centre pixel, so that a
    /// crater smaller than a pixel still marks one.
    fn ellipse(&mut self, cx: f64, cy: f64, rx: f64, ry: f64, angle: f64, value: T) {
        let (s, c) = angle.sin_cos();
        let shape = Shape::Ellipse {
            cx,
            cy,
            rx,
            ry,
            angle,
        };
        let [_, y0, _, y1] = shape.bbox();
        let first = y0.ceil().max(0.0) as i64;
        let last = y1.floor().min(self.height as f64 - 1.0) as i64;
        let [x0, _, x1, _] = shape.bbox();
        for y in first..=last {
            for x in x0.ceil().max(0.0) as i64..=x1.floor().min(self.width as f64 - 1.0) as i64 {
                let (dx, dy) = (x as f64 - cx, y as f64 - cy);
                let (u, v) = (dx * c + dy * s, -dx * s + dy * c);
                if (u / rx).powi(2) + (v / ry).powi(2) <= 1.0 + 1e-9 {
                    self.set(x, y, value);
                }
            }
        }
        self.set(cx.round() as i64, cy.round() as i64, value);
    }
}

fn size_of(labels: &ImageLabels) -> Result<ImageSize, LabelError> {
    labels.size.ok_or_else(|| LabelError::NoSize {
        context: labels.image.clone(),
        why: "a mask must have the image's size",
    })
}

/// Pixel = class id from `classes` (0 background).
pub fn semantic(labels: &ImageLabels, classes: &ClassMap) -> Result<Raster<u8>, LabelError> {
    let size = size_of(labels)?;
    let mut raster = Raster::new(size.width, size.height);
    for (index, object) in labels.objects.iter().enumerate() {
        let id = classes
            .resolve(&object.class)
            .ok_or_else(|| LabelError::UnknownClass {
                context: format!("{}: object {}", labels.image, index + 1),
                class: object.class.clone(),
            })?;
        let value = u8::try_from(id).map_err(|_| LabelError::UnknownClass {
            context: format!(
                "{}: object {} (class ids above 255 do not fit a mask)",
                labels.image,
                index + 1
            ),
            class: object.class.clone(),
        })?;
        raster.paint(&object.shape, value);
    }
    Ok(raster)
}

/// Pixel = 1-based instance number (0 background; the parts of one instance share it),
/// 16-bit.
pub fn instances(labels: &ImageLabels) -> Result<Raster<u16>, LabelError> {
    let size = size_of(labels)?;
    let mut raster = Raster::new(size.width, size.height);
    for (index, instance) in labels.instances().iter().enumerate() {
        for part in &instance.parts {
            raster.paint(&part.shape, u16::try_from(index + 1).unwrap_or(u16::MAX));
        }
    }
    Ok(raster)
}

/// LabelMe's (and PASCAL VOC's) colour map: class `i` gets the colour its bits spread over
/// the high bits of red, green and blue.
pub fn palette(classes: usize) -> Vec<[u8; 3]> {
    (0..classes.max(1))
        .map(|id| {
            let (mut r, mut g, mut b) = (0u8, 0u8, 0u8);
            let mut c = id;
            for j in 0..8 {
                r |= ((c & 1) as u8) << (7 - j);
                g |= (((c >> 1) & 1) as u8) << (7 - j);
                b |= (((c >> 2) & 1) as u8) << (7 - j);
                c >>= 3;
            }
            [r, g, b]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::{Mask, Object};

    fn picture(raster: &Raster<u8>) -> Vec<String> {
        (0..raster.height)
            .map(|y| {
                (0..raster.width)
                    .map(|x| char::from(b'0' + raster.get(x, y)))
                    .collect()
            })
            .collect()
    }

    fn labels(objects: Vec<Object>) -> ImageLabels {
        ImageLabels {
            objects,
            ..ImageLabels::new(
                "t.png",
                Some(ImageSize {
                    width: 8,
                    height: 6,
                    depth: 1,
                }),
            )
        }
    }

    #[test]
    fn shapes_paint_in_order_with_outlines() {
        let raster = semantic(
            &labels(vec![
                Object::new(
                    "crater",
                    Shape::Rect {
                        x0: 0.0,
                        y0: 0.0,
                        x1: 3.0,
                        y1: 2.0,
                    },
                ),
                Object::new(
                    "dark dune",
                    Shape::Polygon(vec![[2.0, 1.0], [6.0, 1.0], [6.0, 4.0]]),
                ),
                Object::new("spider", Shape::Point([7.0, 5.0])),
                Object::new(
                    "slope streak",
                    Shape::Polyline(vec![[0.0, 5.0], [3.0, 5.0]]),
                ),
            ]),
            &ClassMap::mars(),
        )
        .unwrap();
        assert_eq!(
            picture(&raster),
            // The triangle's fill (pixel centres inside) plus its outline: the hypotenuse
            // from (6,4) to (2,1) passes (5,3), (4,2) and (3,2).
            ["11110000", "11222220", "11122220", "00000220", "00000020", "33330007"]
        );
    }

    #[test]
    fn circles_and_rotated_ellipses_are_round() {
        let mut raster = Raster::<u8>::new(9, 9);
        raster.paint(
            &Shape::Circle {
                cx: 4.0,
                cy: 4.0,
                r: 2.0,
            },
            1,
        );
        assert_eq!(
            picture(&raster),
            [
                "000000000",
                "000000000",
                "000010000",
                "000111000",
                "001111100",
                "000111000",
                "000010000",
                "000000000",
                "000000000"
            ]
        );
        let mut raster = Raster::<u8>::new(9, 9);
        raster.paint(
            &Shape::Ellipse {
                cx: 4.0,
                cy: 4.0,
                rx: 3.0,
                ry: 1.0,
                angle: std::f64::consts::FRAC_PI_2,
            },
            1,
        );
        let column: Vec<u8> = (0..9).map(|y| raster.get(4, y)).collect();
        assert_eq!(
            column,
            [0, 1, 1, 1, 1, 1, 1, 1, 0],
            "rotated a quarter turn: tall"
        );
        assert_eq!(
            (0..9).map(|x| raster.get(x, 4)).collect::<Vec<_>>(),
            [0, 0, 0, 1, 1, 1, 0, 0, 0]
        );
        let mut tiny = Raster::<u8>::new(3, 3);
        tiny.paint(
            &Shape::Circle {
                cx: 1.2,
                cy: 0.8,
                r: 0.1,
            },
            1,
        );
        assert_eq!(
            tiny.pixels.iter().filter(|p| **p == 1).count(),
            1,
            "a sub-pixel crater marks its pixel"
        );
    }

    #[test]
    fn masks_instances_and_unknown_classes() {
        let mask = Shape::Mask(Mask {
            x: 6,
            y: 4,
            width: 3,
            height: 1,
            bits: vec![true, false, true],
        });
        let image = labels(vec![
            Object::new(
                "crater",
                Shape::Rect {
                    x0: 1.0,
                    y0: 1.0,
                    x1: 2.0,
                    y1: 2.0,
                },
            ),
            Object::new("crater", mask),
        ]);
        let instances = instances(&image).unwrap();
        assert_eq!(
            (
                instances.get(1, 1),
                instances.get(6, 4),
                instances.get(7, 4)
            ),
            (1, 2, 0)
        );
        let unknown = labels(vec![Object::new("volcano", Shape::Point([0.0, 0.0]))]);
        assert_eq!(
            semantic(&unknown, &ClassMap::mars())
                .unwrap_err()
                .to_string(),
            "t.png: object 1: unknown class \"volcano\""
        );
        let no_size = ImageLabels::new("n.png", None);
        assert!(semantic(&no_size, &ClassMap::mars())
            .unwrap_err()
            .to_string()
            .contains("a mask must have the image's size"));
    }

    #[test]
    fn the_palette_is_labelmes() {
        assert_eq!(
            palette(9),
            [
                [0, 0, 0],
                [128, 0, 0],
                [0, 128, 0],
                [128, 128, 0],
                [0, 0, 128],
                [128, 0, 128],
                [0, 128, 128],
                [128, 128, 128],
                [64, 0, 0]
            ]
        );
    }
}
