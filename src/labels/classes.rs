//! Class maps: names <-> ids.

use super::{invalid, LabelError};

/// Class names indexed by id. Id 0 is the background in masks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassMap {
    names: Vec<String>,
}

/// Names compare ignoring case, spaces, `_` and `-`: "Slope Streak", "slope_streak" and
/// "slope-streak" are one class.
fn key(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect()
}

impl ClassMap {
    pub fn new(names: Vec<String>) -> Self {
        ClassMap { names }
    }

    /// The Mars classes: the HiRISE landmark classes of Zenodo 2538136 (0 is "other" there,
    /// the background here) and the technosignature class the VIA labels use as 8.
    pub fn mars() -> Self {
        ClassMap::new(
            [
                "background",
                "crater",
                "dark dune",
                "slope streak",
                "bright dune",
                "impact ejecta",
                "swiss cheese",
                "spider",
                "technosignature",
            ]
            .map(String::from)
            .to_vec(),
        )
    }

    /// Reads `classes.txt` (one name per line, id = line number from 0, as LabelImg and YOLO
    /// write it) or `id,name` lines (as the Zenodo class map CSV).
    pub fn parse(source: &str, text: &str) -> Result<Self, LabelError> {
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let numbered: Option<Vec<(usize, &str)>> = lines
            .iter()
            .map(|line| {
                let (id, name) = line.split_once(',')?;
                Some((id.trim().parse().ok()?, name.trim()))
            })
            .collect();
        match numbered {
            Some(pairs) if !pairs.is_empty() => ClassMap::numbered(
                source,
                pairs.into_iter().map(|(id, name)| (id, name.to_string())),
            ),
            _ => ClassMap::checked(source, lines.into_iter().map(String::from).collect()),
        }
    }

    /// Classes under the ids given (`id,name` lines, COCO categories); ids not given stay
    /// empty. An id or a name given twice is an error naming `source`.
    pub fn numbered(
        source: &str,
        pairs: impl IntoIterator<Item = (usize, String)>,
    ) -> Result<Self, LabelError> {
        let mut names = Vec::new();
        for (id, name) in pairs {
            if names.len() <= id {
                names.resize(id + 1, String::new());
            }
            if !names[id].is_empty() {
                return Err(invalid(source, format!("class id {id} is given twice")));
            }
            names[id] = name;
        }
        ClassMap::checked(source, names)
    }

    /// The map of `names`, refused when two of them are one class.
    fn checked(source: &str, names: Vec<String>) -> Result<Self, LabelError> {
        let map = ClassMap::new(names);
        for (id, name) in map.names.iter().enumerate() {
            if let Some(first) = map.names[..id]
                .iter()
                .position(|n| key(n) == key(name) && !name.is_empty())
            {
                return Err(invalid(
                    source,
                    format!("class {name:?} appears as id {first} and {id}"),
                ));
            }
        }
        Ok(map)
    }

    /// Adds a class with the next id.
    pub fn push(&mut self, name: String) {
        self.names.push(name);
    }

    pub fn id(&self, name: &str) -> Option<usize> {
        let wanted = key(name);
        self.names.iter().position(|n| key(n) == wanted)
    }

    pub fn name(&self, id: usize) -> Option<&str> {
        self.names
            .get(id)
            .map(String::as_str)
            .filter(|n| !n.is_empty())
    }

    /// A class given either by name or by id written as a number (VIA's `{"anomaly": "8"}`).
    pub fn resolve(&self, class: &str) -> Option<usize> {
        self.id(class).or_else(|| {
            class
                .trim()
                .parse()
                .ok()
                .filter(|id| self.name(*id).is_some())
        })
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// `classes.txt` as LabelImg writes it.
    pub fn to_text(&self) -> String {
        self.names.iter().map(|n| format!("{n}\n")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mars_classes_resolve_by_name_and_by_number() {
        let map = ClassMap::mars();
        assert_eq!(map.id("Slope_Streak"), Some(3));
        assert_eq!(map.id("CRATER"), Some(1));
        assert_eq!(map.resolve("8"), Some(8));
        assert_eq!(map.name(8), Some("technosignature"));
        assert_eq!(map.resolve("42"), None);
        assert_eq!(map.id("volcano"), None);
    }

    #[test]
    fn classes_txt_and_id_name_csv_both_read() {
        let txt = ClassMap::parse("classes.txt", "dog\nperson\n\ncat\n").unwrap();
        assert_eq!(txt.names(), ["dog", "person", "cat"]);
        let csv = ClassMap::parse("map.csv", "0,other\n1,crater\n3,slope streak\n").unwrap();
        assert_eq!(
            (csv.name(1), csv.name(2), csv.name(3)),
            (Some("crater"), None, Some("slope streak"))
        );
        assert_eq!(csv.to_text(), "other\ncrater\n\nslope streak\n");
        let twice = ClassMap::parse("bad.txt", "crater\nCrater\n").unwrap_err();
        assert_eq!(
            twice.to_string(),
            "bad.txt: class \"Crater\" appears as id 0 and 1"
        );
    }
}
