//! PASCAL VOC XML as LabelImg reads and writes it.

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
        let corner = |key: &str| super::number(&context, key, bndbox.get(key));
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

/// Writes LabelImg's layout (tab-indented, integer corners). Shapes other than boxes are
/// written as their bounding boxes. `truncated` is set as LabelImg sets it (a box touching the
/// image border) or when the object says so.
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
    for object in &labels.objects {
        let [x0, y0, x1, y1] = box_corners(&object.shape);
        let touches = y1 == size.height as i64 || y0 == 1 || x1 == size.width as i64 || x0 == 1;
        out += "\t<object>\n";
        out += &format!("\t\t<name>{}</name>\n", escape(&object.class));
        out += "\t\t<pose>Unspecified</pose>\n";
        out += &format!(
            "\t\t<truncated>{}</truncated>\n",
            u8::from(object.truncated || touches)
        );
        out += &format!(
            "\t\t<difficult>{}</difficult>\n",
            u8::from(object.difficult)
        );
        out += &format!(
            "\t\t<bndbox>\n\t\t\t<xmin>{x0}</xmin>\n\t\t\t<ymin>{y0}</ymin>\n\t\t\t<xmax>{x1}</xmax>\n\t\t\t<ymax>{y1}</ymax>\n\t\t</bndbox>\n"
        );
        out += "\t</object>\n";
    }
    out += "</annotation>\n";
    Ok(out)
}

/// Integer box corners as LabelImg makes them from a drawn shape: truncated towards zero,
/// minimum corner at least 1.
pub fn box_corners(shape: &Shape) -> [i64; 4] {
    let [x0, y0, x1, y1] = shape.bbox();
    [x0.max(1.0) as i64, y0.max(1.0) as i64, x1 as i64, y1 as i64]
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
    fn boxes_on_the_border_are_written_truncated_as_labelimg_does() {
        let mut labels = ImageLabels::new(
            "x.jpg",
            Some(ImageSize {
                width: 100,
                height: 50,
                depth: 3,
            }),
        );
        labels.objects.push(Object::new(
            "a",
            Shape::Rect {
                x0: 0.4,
                y0: 10.0,
                x1: 20.7,
                y1: 30.0,
            },
        ));
        labels.objects.push(Object::new(
            "b",
            Shape::Rect {
                x0: 10.0,
                y0: 10.0,
                x1: 20.0,
                y1: 30.0,
            },
        ));
        let text = write(&labels).unwrap();
        let back = read("x.xml", &text).unwrap();
        assert_eq!(
            back.objects[0].shape,
            Shape::Rect {
                x0: 1.0,
                y0: 10.0,
                x1: 20.0,
                y1: 30.0
            }
        );
        assert!(
            back.objects[0].truncated,
            "xmin clamped to 1 touches the border"
        );
        assert!(!back.objects[1].truncated);
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
