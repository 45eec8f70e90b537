//! PASCAL VOC XML as LabelImg reads and writes it.
//!
//! `xmin`..`xmax` are read as positions on the image (LabelImg's practice: the corners of the
//! box the mouse drew), the same system as COCO's, not as the VOC devkit's 1-based indices of
//! the first and last pixel inside the box. Decimal corners are read and written as they are.

use super::{invalid, ImageLabels, ImageSize, LabelError, Object, Shape};
use crate::tree::{from_xml, Node};

/// Reads one VOC annotation. `source` names it in errors.
pub fn read(source: &str, text: &str) -> Result<ImageLabels, LabelError> {
    let (root, tree) = from_xml(text)?;
    if root != "annotation" {
        return Err(invalid(
            source,
            format!("root element is <{root}>, expected <annotation>"),
        ));
    }
    let field =
        |node: &Node, name: &str| super::text(node.get(name)).map(str::trim).map(String::from);
    let image = field(&tree, "filename").unwrap_or_default();
    let size = match tree.get("size") {
        Some(size) => {
            let value = |name: &str| -> Result<u32, LabelError> {
                let text = field(size, name).unwrap_or_default();
                text.parse().map_err(|_| {
                    invalid(
                        source,
                        format!("size/{name}: expected a whole number, found {text:?}"),
                    )
                })
            };
            let (width, height) = (value("width")?, value("height")?);
            let depth = if size.get("depth").is_some() {
                value("depth")?
            } else {
                3
            };
            (width > 0 && height > 0).then_some(ImageSize {
                width,
                height,
                depth,
            })
        }
        None => None,
    };
    let mut labels = ImageLabels::new(image, size);
    for key in ["folder", "path"] {
        if let Some(value) = field(&tree, key) {
            labels.attributes.insert(key.to_string(), value);
        }
    }
    for (index, object) in tree.items("object").into_iter().enumerate() {
        let context = format!("{source}: object {}", index + 1);
        let name = field(object, "name").filter(|n| !n.is_empty());
        let name = name.ok_or_else(|| invalid(&context, "<name> is missing"))?;
        let bndbox = object
            .get("bndbox")
            .ok_or_else(|| invalid(&context, "<bndbox> is missing"))?;
        let corner = |key: &str| super::xml_number(&context, key, bndbox.get(key));
        let (x0, y0, x1, y1) = (
            corner("xmin")?,
            corner("ymin")?,
            corner("xmax")?,
            corner("ymax")?,
        );
        if x1 < x0 || y1 < y0 {
            return Err(invalid(
                &context,
                format!("box ({x0},{y0})-({x1},{y1}) is inverted"),
            ));
        }
        let flag = |key: &str| field(object, key).is_some_and(|v| v == "1");
        let mut object_labels = Object::new(name, Shape::Rect { x0, y0, x1, y1 });
        object_labels.difficult = flag("difficult");
        object_labels.truncated = flag("truncated");
        labels.objects.push(object_labels);
    }
    Ok(labels)
}

fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

/// A coordinate as VOC files hold it: whole numbers as LabelImg writes them (`116`), others
/// with their decimals (`10.5`), never cut to a whole pixel.
fn coordinate(value: f64) -> String {
    super::written(value).to_string()
}

/// Writes LabelImg's layout (tab-indented), one box per instance: the bounds of its parts, or
/// the box its source recorded. `truncated` is set as LabelImg sets it (a box touching the
/// image border; LabelImg keeps `xmin`, `ymin` at 1 or more, so 1 is its border) or when the
/// object says so.
pub fn write(labels: &ImageLabels) -> Result<String, LabelError> {
    let size = labels.size.ok_or_else(|| LabelError::NoSize {
        context: labels.image.clone(),
        why: "VOC files record it",
    })?;
    let folder = labels.attributes.get("folder").map_or("", String::as_str);
    let path = labels
        .attributes
        .get("path")
        .cloned()
        .unwrap_or_else(|| labels.image.clone());
    let mut out = String::from("<annotation>\n");
    out += &format!("\t<folder>{}</folder>\n", escape(folder));
    out += &format!("\t<filename>{}</filename>\n", escape(&labels.image));
    out += &format!("\t<path>{}</path>\n", escape(&path));
    out += "\t<source>\n\t\t<database>Unknown</database>\n\t</source>\n";
    out += &format!(
        "\t<size>\n\t\t<width>{}</width>\n\t\t<height>{}</height>\n\t\t<depth>{}</depth>\n\t</size>\n",
        size.width, size.height, size.depth
    );
    out += "\t<segmented>0</segmented>\n";
    for instance in labels.instances() {
        let [x0, y0, x1, y1] = instance.bbox();
        let touches = x0 <= 1.0 || y0 <= 1.0 || x1 >= size.width as f64 || y1 >= size.height as f64;
        out += "\t<object>\n";
        out += &format!("\t\t<name>{}</name>\n", escape(instance.class));
        out += "\t\t<pose>Unspecified</pose>\n";
        out += &format!(
            "\t\t<truncated>{}</truncated>\n",
            u8::from(instance.truncated() || touches)
        );
        out += &format!(
            "\t\t<difficult>{}</difficult>\n",
            u8::from(instance.difficult())
        );
        let [x0, y0, x1, y1] = [x0, y0, x1, y1].map(coordinate);
        out += &format!(
            "\t\t<bndbox>\n\t\t\t<xmin>{x0}</xmin>\n\t\t\t<ymin>{y0}</ymin>\n\t\t\t<xmax>{x1}</xmax>\n\t\t\t<ymax>{y1}</ymax>\n\t\t</bndbox>\n"
        );
        out += "\t</object>\n";
    }
    out += "</annotation>\n";
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LABELIMG: &str = "<annotation>\n\t<folder>images</folder>\n\t<filename>ESP_011289_1950_RED-0146-fv.jpg</filename>\n\t<path>images/ESP_011289_1950_RED-0146-fv.jpg</path>\n\t<source>\n\t\t<database>Unknown</database>\n\t</source>\n\t<size>\n\t\t<width>227</width>\n\t\t<height>227</height>\n\t\t<depth>1</depth>\n\t</size>\n\t<segmented>0</segmented>\n\t<object>\n\t\t<name>Crater</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n\t\t<difficult>0</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>116</xmin>\n\t\t\t<ymin>133</ymin>\n\t\t\t<xmax>143</xmax>\n\t\t\t<ymax>160</ymax>\n\t\t</bndbox>\n\t</object>\n</annotation>\n";

    #[test]
    fn labelimg_files_read_and_write_back_byte_for_byte() {
        let labels = read("a.xml", LABELIMG).unwrap();
        assert_eq!(
            labels.size,
            Some(ImageSize {
                width: 227,
                height: 227,
                depth: 1
            })
        );
        assert_eq!(labels.objects.len(), 1);
        assert_eq!(labels.objects[0].class, "Crater");
        assert_eq!(
            labels.objects[0].shape,
            Shape::Rect {
                x0: 116.0,
                y0: 133.0,
                x1: 143.0,
                y1: 160.0
            }
        );
        assert_eq!(write(&labels).unwrap(), LABELIMG);
    }

    #[test]
    fn decimal_corners_are_written_as_they_are_and_border_boxes_marked_truncated() {
        let mut labels = ImageLabels::new(
            "x.jpg",
            Some(ImageSize {
                width: 100,
                height: 50,
                depth: 3,
            }),
        );
        let boxes = [
            (0.4, 10.0, 20.7, 30.0),
            (10.0, 10.0, 20.0, 30.0),
            (0.0, 0.0, 10.0, 10.0),
        ];
        for (x0, y0, x1, y1) in boxes {
            labels
                .objects
                .push(Object::new("a", Shape::Rect { x0, y0, x1, y1 }));
        }
        let text = write(&labels).unwrap();
        assert!(text.contains("<xmin>0.4</xmin>") && text.contains("<xmax>20.7</xmax>"));
        let back = read("x.xml", &text).unwrap();
        for (object, (x0, y0, x1, y1)) in back.objects.iter().zip(boxes) {
            assert_eq!(object.shape, Shape::Rect { x0, y0, x1, y1 });
        }
        let truncated: Vec<bool> = back.objects.iter().map(|o| o.truncated).collect();
        assert_eq!(
            truncated,
            [true, false, true],
            "touching the border (LabelImg's 1 too)"
        );
    }

    #[test]
    fn the_parts_of_one_instance_are_one_box() {
        let mut labels = ImageLabels::new(
            "p.jpg",
            Some(ImageSize {
                width: 100,
                height: 50,
                depth: 3,
            }),
        );
        for (x, group) in [(10.0, Some(4)), (30.0, Some(4)), (60.0, None)] {
            let mut part = Object::new(
                "crater",
                Shape::Polygon(vec![[x, 5.0], [x + 5.0, 5.0], [x, 9.0]]),
            );
            part.group = group;
            labels.objects.push(part);
        }
        let back = read("p.xml", &write(&labels).unwrap()).unwrap();
        let boxes: Vec<[f64; 4]> = back.objects.iter().map(|o| o.shape.bbox()).collect();
        assert_eq!(boxes, [[10.0, 5.0, 35.0, 9.0], [60.0, 5.0, 65.0, 9.0]]);
    }

    #[test]
    fn broken_files_name_the_object_and_the_fault() {
        let no_box = "<annotation><object><name>a</name></object></annotation>";
        assert_eq!(
            read("f.xml", no_box).unwrap_err().to_string(),
            "f.xml: object 1: <bndbox> is missing"
        );
        let bad = "<annotation><object><name>a</name><bndbox><xmin>x</xmin><ymin>1</ymin><xmax>2</xmax><ymax>3</ymax></bndbox></object></annotation>";
        assert_eq!(
            read("f.xml", bad).unwrap_err().to_string(),
            "f.xml: object 1: xmin: expected a number, found \"x\""
        );
        assert!(read("f.xml", "<annotation><object>")
            .unwrap_err()
            .to_string()
            .contains("malformed XML"));
        assert!(read("f.xml", "<html/>")
            .unwrap_err()
            .to_string()
            .contains("expected <annotation>"));
        let no_size = ImageLabels::new("n.jpg", None);
        assert_eq!(
            write(&no_size).unwrap_err().to_string(),
            "n.jpg: the image size is unknown; VOC files record it"
        );
    }
}
