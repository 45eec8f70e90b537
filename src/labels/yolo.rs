//! YOLO text labels: `class cx cy w h` boxes normalised to the image size (LabelImg writes
//! them with `%.6f`), and the segmentation variant `class x1 y1 x2 y2 ...`.
//!
//! Fractions become pixels exactly, with one allowance for the digits a file was written
//! with: a corner within the rounding of its numbers of a whole pixel is that pixel (116 for
//! `0.570485 - 0.118943 / 2` of 227 px, which is 115.99995 +- 0.00017), so the whole-pixel
//! boxes LabelImg and areo write come back whole; any other corner is kept as computed. Nothing is clamped or rounded
//! to a pixel here: boxes past the image are clipped (and counted) by the batch step.

use super::{invalid, ClassMap, ImageLabels, ImageSize, LabelError, Object, Shape};

/// Half a unit in the last decimal a number was written with: how far from the written value
/// the value meant can lie.
fn rounding(text: &str) -> f64 {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], text[at + 1..].parse::<i32>().unwrap_or(0)),
        None => (text, 0),
    };
    let decimals = mantissa.split_once('.').map_or(0, |(_, d)| d.len() as i32) - exponent;
    0.5 * 10f64.powi(-decimals)
}

/// `value`, or the whole number within `tolerance` of it (plus the arithmetic's own error:
/// a corner can lie exactly at the bound).
fn whole_within(value: f64, tolerance: f64) -> f64 {
    let whole = value.round();
    if (whole - value).abs() <= tolerance * (1.0 + 1e-9) + 1e-12 * value.abs() {
        whole
    } else {
        value
    }
}

/// Reads one YOLO file. The image size is needed to leave normalised coordinates; class ids
/// become names through `classes` (or stay as the id's digits without one).
pub fn read(
    source: &str,
    text: &str,
    image: &str,
    size: Option<ImageSize>,
    classes: Option<&ClassMap>,
) -> Result<ImageLabels, LabelError> {
    let size = size.ok_or_else(|| LabelError::NoSize {
        context: source.to_string(),
        why: "YOLO coordinates are fractions of it",
    })?;
    let (w, h) = (size.width as f64, size.height as f64);
    let mut labels = ImageLabels::new(image, Some(size));
    for (number, line) in text.lines().enumerate() {
        let context = format!("{source}: line {}", number + 1);
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let id: usize = fields[0].parse().map_err(|_| {
            invalid(
                &context,
                format!("class id {:?} is not a whole number", fields[0]),
            )
        })?;
        let class = match classes {
            Some(map) => map
                .name(id)
                .ok_or_else(|| LabelError::UnknownClass {
                    context: context.clone(),
                    class: id.to_string(),
                })?
                .to_string(),
            None => id.to_string(),
        };
        let values = fields[1..]
            .iter()
            .map(|v| {
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .map(|x| (x, rounding(v)))
                    .ok_or_else(|| invalid(&context, format!("{v:?} is not a number")))
            })
            .collect::<Result<Vec<(f64, f64)>, _>>()?;
        let shape = match values[..] {
            [(cx, dcx), (cy, dcy), (bw, dbw), (bh, dbh)] => {
                super::box_extent(&context, "width", bw)?;
                super::box_extent(&context, "height", bh)?;
                let x = |fraction: f64, slack: f64| whole_within(fraction * w, slack * w);
                let y = |fraction: f64, slack: f64| whole_within(fraction * h, slack * h);
                Shape::Rect {
                    x0: x(cx - bw / 2.0, dcx + dbw / 2.0),
                    y0: y(cy - bh / 2.0, dcy + dbh / 2.0),
                    x1: x(cx + bw / 2.0, dcx + dbw / 2.0),
                    y1: y(cy + bh / 2.0, dcy + dbh / 2.0),
                }
            }
            _ if values.len() >= 6 && values.len() % 2 == 0 => Shape::Polygon(
                values
                    .chunks(2)
                    .map(|p| {
                        [
                            whole_within(p[0].0 * w, p[0].1 * w),
                            whole_within(p[1].0 * h, p[1].1 * h),
                        ]
                    })
                    .collect(),
            ),
            _ => {
                return Err(invalid(
                    &context,
                    format!("{} numbers after the class: expected 4 (a box) or an even number of at least 6 (a polygon)", values.len()),
                ))
            }
        };
        labels.objects.push(Object::new(class, shape));
    }
    Ok(labels)
}

fn class_id(
    classes: &ClassMap,
    labels: &ImageLabels,
    index: usize,
    class: &str,
) -> Result<usize, LabelError> {
    classes
        .resolve(class)
        .ok_or_else(|| LabelError::UnknownClass {
            context: format!("{}: object {}", labels.image, index + 1),
            class: class.to_string(),
        })
}

/// Writes a box per instance with LabelImg's formulas and digits: the bounds of its parts, or
/// the box its source recorded.
pub fn write_boxes(labels: &ImageLabels, classes: &ClassMap) -> Result<String, LabelError> {
    let size = labels.size.ok_or_else(|| LabelError::NoSize {
        context: labels.image.clone(),
        why: "YOLO coordinates are fractions of it",
    })?;
    let (w, h) = (size.width as f64, size.height as f64);
    let mut out = String::new();
    for (index, instance) in labels.instances().iter().enumerate() {
        let id = class_id(classes, labels, index, instance.class)?;
        let [x0, y0, x1, y1] = instance.bbox();
        out += &format!(
            "{id} {:.6} {:.6} {:.6} {:.6}\n",
            (x0 + x1) / 2.0 / w,
            (y0 + y1) / 2.0 / h,
            (x1 - x0) / w,
            (y1 - y0) / h
        );
    }
    Ok(out)
}

/// Writes the segmentation variant: each area shape as its outline polygon. Shapes without
/// an area (lines, points, masks) are skipped and counted.
pub fn write_polygons(
    labels: &ImageLabels,
    classes: &ClassMap,
) -> Result<(String, usize), LabelError> {
    let size = labels.size.ok_or_else(|| LabelError::NoSize {
        context: labels.image.clone(),
        why: "YOLO coordinates are fractions of it",
    })?;
    let (w, h) = (size.width as f64, size.height as f64);
    let (mut out, mut skipped) = (String::new(), 0);
    for (index, object) in labels.objects.iter().enumerate() {
        let id = class_id(classes, labels, index, &object.class)?;
        let Some(points) = object.shape.to_polygon() else {
            skipped += 1;
            continue;
        };
        out += &id.to_string();
        for [x, y] in points {
            out += &format!(" {:.6} {:.6}", x / w, y / h);
        }
        out.push('\n');
    }
    Ok((out, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(width: u32, height: u32) -> Option<ImageSize> {
        Some(ImageSize {
            width,
            height,
            depth: 1,
        })
    }

    #[test]
    fn labelimg_formulas_give_the_mars_crater_line_and_back() {
        // xmin 116, ymin 133, xmax 143, ymax 160 on 227 x 227 (the Mars SSD team's crater).
        let mut labels = ImageLabels::new("c.jpg", size(227, 227));
        labels.objects.push(Object::new(
            "crater",
            Shape::Rect {
                x0: 116.0,
                y0: 133.0,
                x1: 143.0,
                y1: 160.0,
            },
        ));
        let line = write_boxes(&labels, &ClassMap::new(vec!["crater".into()])).unwrap();
        assert_eq!(line, "0 0.570485 0.645374 0.118943 0.118943\n");
        let back = read(
            "c.txt",
            &line,
            "c.jpg",
            size(227, 227),
            Some(&ClassMap::new(vec!["crater".into()])),
        )
        .unwrap();
        assert_eq!(back.objects, labels.objects);
    }

    #[test]
    fn every_integer_box_survives_the_round_trip() {
        let classes = ClassMap::mars();
        for (w, h) in [(227u32, 227u32), (500, 375), (1024, 768), (33, 17)] {
            let mut labels = ImageLabels::new("i.jpg", size(w, h));
            for i in 0..200u32 {
                let x0 = 1 + (i * 7919) % (w - 2);
                let y0 = 1 + (i * 104_729) % (h - 2);
                let x1 = x0 + 1 + (i * 13) % (w - x0);
                let y1 = y0 + 1 + (i * 31) % (h - y0);
                let (x1, y1) = (x1.min(w), y1.min(h));
                labels.objects.push(Object::new(
                    "crater",
                    Shape::Rect {
                        x0: x0 as f64,
                        y0: y0 as f64,
                        x1: x1 as f64,
                        y1: y1 as f64,
                    },
                ));
            }
            let text = write_boxes(&labels, &classes).unwrap();
            let back = read("i.txt", &text, "i.jpg", size(w, h), Some(&classes)).unwrap();
            assert_eq!(back.objects, labels.objects, "{w}x{h}");
        }
    }

    #[test]
    fn fractions_become_pixels_exactly_and_thin_edge_boxes_stay_valid() {
        let classes = ClassMap::new(vec!["crater".into()]);
        let read_line = |line: &str| {
            read("d.txt", line, "d.jpg", size(1000, 500), Some(&classes))
                .unwrap()
                .objects[0]
                .shape
                .clone()
        };
        // A detector's line keeps its sub-pixel corners: (0.512345 - 0.0101 / 2) * 1000 ...
        let Shape::Rect { x0, y0, x1, y1 } = read_line("0 0.512345 0.4 0.0101 0.02") else {
            panic!("a box")
        };
        for (got, want) in [(x0, 507.295), (y0, 195.0), (x1, 517.395), (y1, 205.0)] {
            assert!((got - want).abs() < 1e-9, "{got} != {want}");
        }
        // A box one pixel from the left edge, 2 px wide: no corner is pushed inward, and the
        // VOC file it becomes reads back (xmin no longer lands past xmax).
        let thin = read_line("0 0.002 0.5 0.002 0.1");
        assert_eq!(
            thin,
            Shape::Rect {
                x0: 1.0,
                y0: 225.0,
                x1: 3.0,
                y1: 275.0
            }
        );
        let mut edge = ImageLabels::new("e.jpg", size(1000, 500));
        edge.objects
            .push(Object::new("crater", read_line("0 0.0005 0.5 0.0006 0.1")));
        let voc = super::super::voc::write(&edge).unwrap();
        let back = super::super::voc::read("e.xml", &voc).unwrap();
        assert_eq!(back.objects[0].shape.bbox(), [0.2, 225.0, 0.8, 275.0]);
        let mut labels = ImageLabels::new("d.jpg", size(100, 50));
        labels.objects.push(Object::new(
            "crater",
            Shape::Rect {
                x0: 0.0,
                y0: 0.0,
                x1: 10.0,
                y1: 10.0,
            },
        ));
        assert_eq!(
            write_boxes(&labels, &classes).unwrap(),
            "0 0.050000 0.100000 0.100000 0.200000\n"
        );
    }

    #[test]
    fn corners_snap_only_within_the_rounding_of_the_written_digits() {
        // 116 / 227 written with 6 decimals lies 0.00005 px off; with 3 decimals a corner is
        // known to 0.11 px, so 116.4 is no whole pixel (with 2, to 1.1 px, it could be 116).
        assert_eq!(
            whole_within(115.99995, rounding("0.570485") * 227.0 * 1.5),
            116.0
        );
        assert_eq!(whole_within(116.4, rounding("0.512") * 227.0), 116.4);
        assert_eq!(whole_within(116.4, rounding("0.51") * 227.0), 116.0);
        assert_eq!(rounding("0.5"), 0.05);
        assert_eq!(rounding("5e-1"), 0.05);
        assert_eq!(whole_within(10.000001, 0.0), 10.000001);
    }

    #[test]
    fn polygons_read_and_write_normalised() {
        let text = "2 0.1 0.2 0.5 0.2 0.5 0.6\n";
        let labels = read("p.txt", text, "p.jpg", size(200, 100), None).unwrap();
        assert_eq!(labels.objects[0].class, "2");
        assert_eq!(
            labels.objects[0].shape,
            Shape::Polygon(vec![[20.0, 20.0], [100.0, 20.0], [100.0, 60.0]])
        );
        let classes = ClassMap::new(vec!["a".into(), "b".into(), "2".into()]);
        let (out, skipped) = write_polygons(&labels, &classes).unwrap();
        assert_eq!(
            (out.as_str(), skipped),
            (
                "2 0.100000 0.200000 0.500000 0.200000 0.500000 0.600000\n",
                0
            )
        );
    }

    #[test]
    fn bad_lines_and_missing_sizes_are_named() {
        let err = |text: &str| {
            read("b.txt", text, "b.jpg", size(10, 10), None)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(err("0 0.5 0.5 0.1\n"), "b.txt: line 1: 3 numbers after the class: expected 4 (a box) or an even number of at least 6 (a polygon)");
        assert_eq!(
            err("\nx 0.5 0.5 0.1 0.1"),
            "b.txt: line 2: class id \"x\" is not a whole number"
        );
        assert_eq!(
            err("0 0.5 nan 0.1 0.1"),
            "b.txt: line 1: \"nan\" is not a number"
        );
        assert_eq!(
            err("0 0.5 0.5 0.1 -0.1"),
            "b.txt: line 1: height is -0.1: a box cannot have a negative size"
        );
        let unknown = read(
            "b.txt",
            "5 0.5 0.5 0.1 0.1",
            "b.jpg",
            size(10, 10),
            Some(&ClassMap::new(vec!["a".into()])),
        );
        assert_eq!(
            unknown.unwrap_err().to_string(),
            "b.txt: line 1: unknown class \"5\""
        );
        let no_size = read("b.txt", "0 0.5 0.5 0.1 0.1", "b.jpg", None, None).unwrap_err();
        assert_eq!(
            no_size.to_string(),
            "b.txt: the image size is unknown; YOLO coordinates are fractions of it"
        );
    }
}
