//! YOLO text labels: `class cx cy w h` boxes normalised to the image size (LabelImg writes
//! them with `%.6f`), and the segmentation variant `class x1 y1 x2 y2 ...`.

use super::voc::box_corners;
use super::{invalid, ClassMap, ImageLabels, ImageSize, LabelError, Object, Shape};

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
                    .ok_or_else(|| invalid(&context, format!("{v:?} is not a number")))
            })
            .collect::<Result<Vec<f64>, _>>()?;
        let shape = match values.len() {
            4 => {
                // As LabelImg reads a line: clamp to the image, then round (half to even).
                let (cx, cy, bw, bh) = (values[0], values[1], values[2], values[3]);
                let x0 = (cx - bw / 2.0).max(0.0);
                let x1 = (cx + bw / 2.0).min(1.0);
                let y0 = (cy - bh / 2.0).max(0.0);
                let y1 = (cy + bh / 2.0).min(1.0);
                Shape::Rect {
                    x0: (w * x0).round_ties_even(),
                    y0: (h * y0).round_ties_even(),
                    x1: (w * x1).round_ties_even(),
                    y1: (h * y1).round_ties_even(),
                }
            }
            n if n >= 6 && n % 2 == 0 => {
                Shape::Polygon(values.chunks(2).map(|p| [p[0] * w, p[1] * h]).collect())
            }
            n => {
                return Err(invalid(
                    &context,
                    format!("{n} numbers after the class: expected 4 (a box) or an even number of at least 6 (a polygon)"),
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

/// Writes boxes as LabelImg does (every shape as its box, from integer corners).
pub fn write_boxes(labels: &ImageLabels, classes: &ClassMap) -> Result<String, LabelError> {
    let size = labels.size.ok_or_else(|| LabelError::NoSize {
        context: labels.image.clone(),
        why: "YOLO coordinates are fractions of it",
    })?;
    let (w, h) = (size.width as f64, size.height as f64);
    let mut out = String::new();
    for (index, object) in labels.objects.iter().enumerate() {
        let id = class_id(classes, labels, index, &object.class)?;
        let [x0, y0, x1, y1] = box_corners(&object.shape).map(|v| v as f64);
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
