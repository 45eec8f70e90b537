//! The `meta` tree: the schema version of the whole catalog, and the migrations that bring an
//! older catalog up to this build's version when it is opened.

use super::CatalogError;

pub const META_TREE: &str = "meta";
const VERSION_KEY: &[u8] = b"schema_version";

/// The schema this build writes. Version 1: products, product files, and the instrument,
/// state, file-state and spatial indexes as laid out in `keys`. Version 2 adds artefacts
/// (`artifacts`) and what they were made from (`idx_made_from`).
pub const CURRENT: u32 = 2;

/// One step from `to - 1` to `to`.
pub struct Migration {
    pub to: u32,
    pub description: &'static str,
    pub run: fn(&sled::Db) -> Result<(), CatalogError>,
}

/// Migrations this build knows, in order.
pub const MIGRATIONS: &[Migration] = &[Migration {
    to: 2,
    description: "adds the artefact records and their made-from index",
    run: add_artifact_trees,
}];

/// Version 1 had no artefacts: the two trees start empty.
fn add_artifact_trees(db: &sled::Db) -> Result<(), CatalogError> {
    db.open_tree("artifacts")?;
    db.open_tree("idx_made_from")?;
    Ok(())
}

pub fn stored_version(db: &sled::Db) -> Result<Option<u32>, CatalogError> {
    let meta = db.open_tree(META_TREE)?;
    match meta.get(VERSION_KEY)? {
        None => Ok(None),
        Some(bytes) => {
            let bytes: [u8; 4] = bytes
                .as_ref()
                .try_into()
                .map_err(|_| CatalogError::Corrupt {
                    tree: META_TREE,
                    key: "schema_version".into(),
                    reason: format!("{} bytes, expected 4", bytes.len()),
                })?;
            Ok(Some(u32::from_be_bytes(bytes)))
        }
    }
}

fn stamp(db: &sled::Db, version: u32) -> Result<(), CatalogError> {
    db.open_tree(META_TREE)?
        .insert(VERSION_KEY, &version.to_be_bytes())?;
    db.flush()?;
    Ok(())
}

/// Brings the catalog to `target`: stamps a new catalog, runs each missing migration in order
/// (stamping after each, so an interrupted upgrade resumes where it stopped), and refuses a
/// catalog written by a newer build rather than misreading it.
pub fn upgrade(db: &sled::Db, target: u32, migrations: &[Migration]) -> Result<(), CatalogError> {
    let Some(mut version) = stored_version(db)? else {
        return stamp(db, target);
    };
    if version > target {
        return Err(CatalogError::SchemaTooNew {
            found: version,
            supported: target,
        });
    }
    while version < target {
        let step = migrations
            .iter()
            .find(|m| m.to == version + 1)
            .ok_or(CatalogError::NoMigration { from: version })?;
        tracing::info!(
            from = version,
            to = step.to,
            "migrating catalog: {}",
            step.description
        );
        (step.run)(db)?;
        version = step.to;
        stamp(db, version)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_db() -> sled::Db {
        sled::Config::new().temporary(true).open().unwrap()
    }

    fn add_marker(db: &sled::Db) -> Result<(), CatalogError> {
        let tree = db.open_tree("markers")?;
        let n = tree.len() as u8;
        tree.insert([n], &[])?;
        Ok(())
    }

    const STEPS: &[Migration] = &[
        Migration {
            to: 2,
            description: "first",
            run: add_marker,
        },
        Migration {
            to: 3,
            description: "second",
            run: add_marker,
        },
    ];

    #[test]
    fn a_new_catalog_is_stamped_without_running_migrations() {
        let db = temp_db();
        upgrade(&db, 3, STEPS).unwrap();
        assert_eq!(stored_version(&db).unwrap(), Some(3));
        assert_eq!(db.open_tree("markers").unwrap().len(), 0);
    }

    #[test]
    fn an_old_catalog_runs_each_missing_step_once() {
        let db = temp_db();
        stamp(&db, 1).unwrap();
        upgrade(&db, 3, STEPS).unwrap();
        assert_eq!(stored_version(&db).unwrap(), Some(3));
        assert_eq!(db.open_tree("markers").unwrap().len(), 2);
        upgrade(&db, 3, STEPS).unwrap();
        assert_eq!(db.open_tree("markers").unwrap().len(), 2, "already current");
    }

    #[test]
    fn a_newer_catalog_is_refused() {
        let db = temp_db();
        stamp(&db, 9).unwrap();
        let err = upgrade(&db, 3, STEPS).unwrap_err();
        assert!(matches!(
            err,
            CatalogError::SchemaTooNew {
                found: 9,
                supported: 3
            }
        ));
        assert_eq!(stored_version(&db).unwrap(), Some(9), "left untouched");
    }

    #[test]
    fn a_gap_in_the_migrations_is_an_error() {
        let db = temp_db();
        stamp(&db, 1).unwrap();
        let err = upgrade(&db, 4, STEPS).unwrap_err();
        assert!(matches!(err, CatalogError::NoMigration { from: 3 }));
        assert_eq!(stored_version(&db).unwrap(), Some(3));
    }
}
