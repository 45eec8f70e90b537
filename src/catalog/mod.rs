//! The catalog: typed records in sled, one tree per entity, with secondary indexes.
//!
//! Trees (schema version in `meta`, see [`schema`]):
//! - `products`: pdsid -> [`Product`]
//! - `product_files`: pdsid -> the product's [`ProductFile`]s, in name order. A product's
//!   files are always read and changed together, and one value per product keeps an import
//!   to one write per product instead of one per file (a HiRISE product lists 24-27 files).
//! - `idx_instrument`: instrument NUL type NUL pdsid -> ()
//! - `idx_state`: state pdsid -> () for products that are not plain remote (see
//!   [`product_state`]); a product without an entry is remote
//! - `idx_file_state`: state pdsid NUL name -> () for files that are not plain remote
//! - `idx_spatial`: level row col pdsid -> box (see [`keys::spatial`])
//! - `jobs`: job id (u64 BE) -> the engine's own encoding of the job (opaque here)
//! - `artifacts`: kind NUL name -> [`Artifact`] (tile sets, datasets, runs, predictions,
//!   reports, with what each was made from)
//! - `idx_made_from`: input NUL kind NUL name -> the artefact's key, one per input
//!
//! A product, its files and all their index entries change in one sled transaction, so a crash
//! leaves either the old or the new version of a product, never half of one.

mod codec;
mod keys;
pub mod schema;

use crate::geo::LonLatBox;
use crate::lineage::{Artifact, ArtifactKind, Input};
use crate::product::{product_state, FileState, Product, ProductEntry, ProductFile};
use codec::{decode, encode, Record};
use keys::spatial;
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog storage: {0}")]
    Storage(#[from] sled::Error),
    #[error(
        "cannot open the catalog at {path}: {reason} (is another areo process using this workspace?)"
    )]
    Open { path: String, reason: String },
    #[error("catalog record {tree}/{key} is unreadable: {reason}")]
    Corrupt {
        tree: &'static str,
        key: String,
        reason: String,
    },
    #[error("cannot encode a {tree} record: {reason}")]
    Encode { tree: &'static str, reason: String },
    #[error(
        "the catalog has schema version {found}, newer than this build of areo understands \
         ({supported}); upgrade areo"
    )]
    SchemaTooNew { found: u32, supported: u32 },
    #[error("no migration from catalog schema version {from}")]
    NoMigration { from: u32 },
    #[error("no product {0} in the catalog")]
    NoProduct(String),
    #[error("product {pdsid} has no file {name}")]
    NoFile { pdsid: String, name: String },
}

/// What an import did to one product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Upsert {
    Inserted,
    Updated,
    /// The same data was already stored; nothing was written.
    Unchanged,
    /// The stored record came from a newer reply; the older one was ignored.
    SkippedOlder,
}

/// How many products each [`Upsert`] outcome had.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpsertCounts {
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub skipped_older: usize,
}

impl UpsertCounts {
    pub fn add(&mut self, outcomes: &[Upsert]) {
        for outcome in outcomes {
            match outcome {
                Upsert::Inserted => self.inserted += 1,
                Upsert::Updated => self.updated += 1,
                Upsert::Unchanged => self.unchanged += 1,
                Upsert::SkippedOlder => self.skipped_older += 1,
            }
        }
    }
}

/// Filters for [`Catalog::query`]; all given filters must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProductQuery {
    pub instrument: Option<String>,
    pub product_type: Option<String>,
    pub bbox: Option<LonLatBox>,
    pub state: Option<FileState>,
    pub limit: Option<usize>,
}

/// A product as listed: the record plus what the catalog knows of it locally.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductRow {
    #[serde(flatten)]
    pub product: Product,
    pub state: FileState,
    pub bytes_on_disk: u64,
}

impl ProductRow {
    /// A product known only from a reply, not (yet) in the catalog.
    pub fn not_stored(product: Product) -> Self {
        ProductRow {
            product,
            state: FileState::Remote,
            bytes_on_disk: 0,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CatalogStats {
    pub products: u64,
    /// instrument -> product type -> count.
    pub by_instrument: BTreeMap<String, BTreeMap<String, u64>>,
    pub products_by_state: BTreeMap<FileState, u64>,
    pub files: u64,
    pub files_by_state: BTreeMap<FileState, u64>,
    /// Sum of the sizes of complete files.
    pub bytes_on_disk: u64,
    /// What sled itself occupies.
    pub catalog_bytes: u64,
}

/// A handle on the catalog; clones share the same database.
#[derive(Clone)]
pub struct Catalog {
    db: sled::Db,
    products: sled::Tree,
    files: sled::Tree,
    by_instrument: sled::Tree,
    by_state: sled::Tree,
    by_file_state: sled::Tree,
    spatial: sled::Tree,
    jobs: sled::Tree,
    artifacts: sled::Tree,
    made_from: sled::Tree,
}

/// Job records of the engine: u64 id (big-endian) -> the engine's own encoding. The catalog
/// keeps them durable and transactional without knowing their shape (the engine is a higher
/// layer).
const JOBS_TREE: &str = "jobs";
const MADE_FROM_TREE: &str = "idx_made_from";

type Candidates<'a> = Box<dyn Iterator<Item = Result<String, CatalogError>> + 'a>;

type TxResult<T> = Result<T, ConflictableTransactionError<CatalogError>>;

fn abort<T>(error: CatalogError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(error))
}

fn tx_error(error: TransactionError<CatalogError>) -> CatalogError {
    match error {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => CatalogError::Storage(e),
    }
}

/// The local half of a file record, which a new reply must never overwrite.
fn keep_local_state(remote: &mut ProductFile, local: &ProductFile) {
    remote.state = local.state;
    remote.local_path = local.local_path.clone();
    remote.size = local.size;
    remote.sha256 = local.sha256.clone();
    remote.error = local.error.clone();
}

/// Merges a reply's file list into what is stored: listed files take the reply's metadata and
/// keep their local state; unlisted files stay only if something local hangs on them. A reply
/// without a file list leaves the files alone.
fn merge_files(old: &[ProductFile], new: Option<&[ProductFile]>) -> Vec<ProductFile> {
    let Some(new) = new else {
        return old.to_vec();
    };
    let mut merged: BTreeMap<String, ProductFile> = BTreeMap::new();
    for file in new {
        let mut file = file.clone();
        if let Some(local) = old.iter().find(|o| o.name == file.name) {
            keep_local_state(&mut file, local);
        }
        merged.insert(file.name.clone(), file);
    }
    for file in old {
        if file.state != FileState::Remote && !merged.contains_key(&file.name) {
            merged.insert(file.name.clone(), file.clone());
        }
    }
    merged.into_values().collect()
}

/// The trees one product change touches, inside a transaction.
struct Tx<'a> {
    products: &'a TransactionalTree,
    files: &'a TransactionalTree,
    by_instrument: &'a TransactionalTree,
    by_state: &'a TransactionalTree,
    by_file_state: &'a TransactionalTree,
    spatial: &'a TransactionalTree,
}

impl Tx<'_> {
    fn product(&self, pdsid: &str) -> TxResult<Option<Product>> {
        let key = keys::product_key(pdsid);
        match self.products.get(&key)? {
            Some(bytes) => decode(&key, &bytes).map(Some).or_else(abort),
            None => Ok(None),
        }
    }

    fn files(&self, pdsid: &str) -> TxResult<Vec<ProductFile>> {
        let key = keys::product_key(pdsid);
        match self.files.get(&key)? {
            Some(bytes) => decode(&key, &bytes).or_else(abort),
            None => Ok(Vec::new()),
        }
    }

    /// Removes a stored product's index entries and its files.
    fn remove(&self, old: &Product, old_files: &[ProductFile]) -> TxResult<()> {
        let pdsid = &old.pdsid;
        self.by_instrument.remove(keys::instrument_key(
            &old.instrument,
            &old.product_type,
            pdsid,
        ))?;
        if let Some(bbox) = &old.bbox {
            self.spatial.remove(spatial::key(bbox, pdsid))?;
        }
        let state = product_state(old_files);
        if state != FileState::Remote {
            self.by_state.remove(keys::state_key(state, pdsid))?;
        }
        self.files.remove(keys::product_key(pdsid))?;
        for file in old_files {
            if file.state != FileState::Remote {
                self.by_file_state
                    .remove(keys::file_state_key(file.state, pdsid, &file.name))?;
            }
        }
        Ok(())
    }

    /// Writes a product, its files and every index entry they need.
    fn write(&self, product: &Product, files: &[ProductFile]) -> TxResult<()> {
        let pdsid = &product.pdsid;
        self.products
            .insert(keys::product_key(pdsid), encode(product).or_else(abort)?)?;
        self.by_instrument.insert(
            keys::instrument_key(&product.instrument, &product.product_type, pdsid),
            &[],
        )?;
        if let Some(bbox) = &product.bbox {
            self.spatial
                .insert(spatial::key(bbox, pdsid), &spatial::encode_box(bbox))?;
        }
        let state = product_state(files);
        if state != FileState::Remote {
            self.by_state.insert(keys::state_key(state, pdsid), &[])?;
        }
        if !files.is_empty() {
            self.files.insert(
                keys::product_key(pdsid),
                encode(&files.to_vec()).or_else(abort)?,
            )?;
        }
        for file in files {
            if file.state != FileState::Remote {
                self.by_file_state
                    .insert(keys::file_state_key(file.state, pdsid, &file.name), &[])?;
            }
        }
        Ok(())
    }
}

/// Opens the sled database in `dir`, waiting up to two seconds for its file lock. sled
/// writes its last buffers on background threads that keep the lock a little after the
/// database is dropped, so reopening in the same process can briefly find it held; another
/// process holding it for longer is still an error.
pub fn open_when_released(dir: &Path) -> sled::Result<sled::Db> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match sled::Config::new().path(dir).open() {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            result => return result,
        }
    }
}

impl Catalog {
    /// Opens (creating if needed) the catalog in `dir` and brings its schema up to date.
    pub fn open(dir: &Path) -> Result<Self, CatalogError> {
        let db = open_when_released(dir).map_err(|e| CatalogError::Open {
            path: dir.display().to_string(),
            reason: e.to_string(),
        })?;
        schema::upgrade(&db, schema::CURRENT, schema::MIGRATIONS)?;
        Ok(Self {
            products: db.open_tree(Product::TREE)?,
            files: db.open_tree(<Vec<ProductFile>>::TREE)?,
            by_instrument: db.open_tree("idx_instrument")?,
            by_state: db.open_tree("idx_state")?,
            by_file_state: db.open_tree("idx_file_state")?,
            spatial: db.open_tree("idx_spatial")?,
            jobs: db.open_tree(JOBS_TREE)?,
            artifacts: db.open_tree(Artifact::TREE)?,
            made_from: db.open_tree(MADE_FROM_TREE)?,
            db,
        })
    }

    fn transaction<T>(&self, body: impl Fn(&Tx) -> TxResult<T>) -> Result<T, CatalogError> {
        (
            &self.products,
            &self.files,
            &self.by_instrument,
            &self.by_state,
            &self.by_file_state,
            &self.spatial,
        )
            .transaction(
                |(products, files, by_instrument, by_state, by_file_state, spatial)| {
                    body(&Tx {
                        products,
                        files,
                        by_instrument,
                        by_state,
                        by_file_state,
                        spatial,
                    })
                },
            )
            .map_err(tx_error)
    }

    /// Stores a batch of products atomically: all of them with their files and index entries,
    /// or none. A product already stored from a newer reply is left as it is; local file state
    /// (downloads, checksums) always survives.
    pub fn upsert(&self, entries: &[ProductEntry]) -> Result<Vec<Upsert>, CatalogError> {
        let outcomes = self.transaction(|tx| {
            let mut outcomes = Vec::with_capacity(entries.len());
            for entry in entries {
                let new = &entry.product;
                let Some(old) = tx.product(&new.pdsid)? else {
                    tx.write(new, &merge_files(&[], entry.files.as_deref()))?;
                    outcomes.push(Upsert::Inserted);
                    continue;
                };
                if let (Some(stored), Some(incoming)) = (old.retrieved_at, new.retrieved_at) {
                    if incoming < stored {
                        outcomes.push(Upsert::SkippedOlder);
                        continue;
                    }
                }
                let old_files = tx.files(&new.pdsid)?;
                let files = merge_files(&old_files, entry.files.as_deref());
                let same_product = Product {
                    retrieved_at: old.retrieved_at,
                    ..new.clone()
                } == old;
                if same_product && files == old_files {
                    outcomes.push(Upsert::Unchanged);
                    continue;
                }
                tx.remove(&old, &old_files)?;
                tx.write(new, &files)?;
                outcomes.push(Upsert::Updated);
            }
            Ok(outcomes)
        })?;
        Ok(outcomes)
    }

    /// Changes one file record (the downloader's entry point) and keeps the file-state and
    /// product-state indexes in step, atomically.
    pub fn update_file(
        &self,
        pdsid: &str,
        name: &str,
        change: impl Fn(&mut ProductFile),
    ) -> Result<ProductFile, CatalogError> {
        self.transaction(|tx| {
            let Some(product) = tx.product(pdsid)? else {
                return abort(CatalogError::NoProduct(pdsid.to_string()));
            };
            let old_files = tx.files(pdsid)?;
            let mut files = old_files.clone();
            let Some(file) = files.iter_mut().find(|f| f.name == name) else {
                return abort(CatalogError::NoFile {
                    pdsid: pdsid.to_string(),
                    name: name.to_string(),
                });
            };
            change(file);
            file.name = name.to_string();
            let updated = file.clone();
            tx.remove(&product, &old_files)?;
            tx.write(&product, &files)?;
            Ok(updated)
        })
    }

    pub fn product(&self, pdsid: &str) -> Result<Option<Product>, CatalogError> {
        let key = keys::product_key(&pdsid.to_ascii_uppercase());
        self.products
            .get(&key)?
            .map(|bytes| decode(&key, &bytes))
            .transpose()
    }

    /// A product's files in name order.
    pub fn files(&self, pdsid: &str) -> Result<Vec<ProductFile>, CatalogError> {
        let key = keys::product_key(&pdsid.to_ascii_uppercase());
        match self.files.get(&key)? {
            Some(bytes) => decode(&key, &bytes),
            None => Ok(Vec::new()),
        }
    }

    /// The product's state as indexed.
    pub fn product_state(&self, pdsid: &str) -> Result<FileState, CatalogError> {
        for state in FileState::ALL {
            if self.by_state.contains_key(keys::state_key(state, pdsid))? {
                return Ok(state);
            }
        }
        Ok(FileState::Remote)
    }

    fn bytes_on_disk(&self, pdsid: &str) -> Result<u64, CatalogError> {
        let prefix = keys::file_state_key(FileState::Complete, pdsid, "");
        if self.by_file_state.scan_prefix(&prefix).next().is_none() {
            return Ok(0);
        }
        Ok(complete_bytes(&self.files(pdsid)?))
    }

    pub fn row(&self, product: Product) -> Result<ProductRow, CatalogError> {
        Ok(ProductRow {
            state: self.product_state(&product.pdsid)?,
            bytes_on_disk: self.bytes_on_disk(&product.pdsid)?,
            product,
        })
    }

    /// Products whose box intersects `bbox`, in pdsid order, found through the spatial index.
    fn spatial_candidates(&self, bbox: &LonLatBox) -> Result<BTreeSet<String>, CatalogError> {
        let mut found = BTreeSet::new();
        for level in 0..spatial::LEVELS {
            for (row, first, last) in spatial::row_spans(level, bbox) {
                let start = spatial::cell_prefix(level, row, first);
                let end = spatial::cell_prefix(level, row, last + 1);
                for kv in self.spatial.range(start..end) {
                    let (key, value) = kv?;
                    let hit = spatial::decode_box(&value).is_some_and(|b| b.intersects(bbox));
                    if let (true, Some(pdsid)) = (hit, spatial::pdsid_of(&key)) {
                        found.insert(pdsid.to_string());
                    }
                }
            }
        }
        Ok(found)
    }

    /// Candidate ids from the most selective index the query allows, in pdsid order. Indexes
    /// already in pdsid order are read lazily, so a query with a limit stops early.
    fn candidates(&self, query: &ProductQuery) -> Result<Candidates<'_>, CatalogError> {
        let id_after = |skip: usize| {
            move |key: sled::Result<sled::IVec>| {
                Ok(String::from_utf8_lossy(&key?[skip..]).into_owned())
            }
        };
        if let Some(bbox) = &query.bbox {
            return Ok(Box::new(self.spatial_candidates(bbox)?.into_iter().map(Ok)));
        }
        if let Some(instrument) = &query.instrument {
            let product_type = query.product_type.as_ref().map(|t| t.to_ascii_uppercase());
            let prefix =
                keys::instrument_prefix(&instrument.to_ascii_uppercase(), product_type.as_deref());
            let ids = self.by_instrument.scan_prefix(&prefix).keys().map(|key| {
                let key = key?;
                keys::split_instrument_key(&key)
                    .map(|(_, _, pdsid)| pdsid.to_string())
                    .ok_or_else(|| CatalogError::Corrupt {
                        tree: "idx_instrument",
                        key: String::from_utf8_lossy(&key).into_owned(),
                        reason: "not instrument/type/pdsid".into(),
                    })
            });
            if product_type.is_some() {
                return Ok(Box::new(ids));
            }
            // Across types the index is ordered by type first.
            let mut ids = ids.collect::<Result<Vec<_>, _>>()?;
            ids.sort_unstable();
            return Ok(Box::new(ids.into_iter().map(Ok)));
        }
        if let Some(state) = query.state.filter(|s| *s != FileState::Remote) {
            let ids = self
                .by_state
                .scan_prefix([state.code()])
                .keys()
                .map(id_after(1));
            return Ok(Box::new(ids));
        }
        Ok(Box::new(self.products.iter().keys().map(id_after(0))))
    }

    /// Products matching every filter of `query`, in pdsid order, at most `query.limit`.
    pub fn query(&self, query: &ProductQuery) -> Result<Vec<ProductRow>, CatalogError> {
        let wanted = |given: &Option<String>, value: &str| {
            given.as_ref().is_none_or(|g| g.eq_ignore_ascii_case(value))
        };
        let mut rows = Vec::new();
        for pdsid in self.candidates(query)? {
            let pdsid = pdsid?;
            if query.limit.is_some_and(|limit| rows.len() >= limit) {
                break;
            }
            if let Some(state) = query.state {
                if self.product_state(&pdsid)? != state {
                    continue;
                }
            }
            let Some(product) = self.product(&pdsid)? else {
                continue;
            };
            if wanted(&query.instrument, &product.instrument)
                && wanted(&query.product_type, &product.product_type)
            {
                rows.push(self.row(product)?);
            }
        }
        Ok(rows)
    }

    pub fn stats(&self) -> Result<CatalogStats, CatalogError> {
        let mut stats = CatalogStats {
            products: self.products.len() as u64,
            catalog_bytes: self.db.size_on_disk()?,
            ..CatalogStats::default()
        };
        for key in self.by_instrument.iter().keys() {
            let key = key?;
            if let Some((instrument, product_type, _)) = keys::split_instrument_key(&key) {
                *stats
                    .by_instrument
                    .entry(instrument.to_string())
                    .or_default()
                    .entry(product_type.to_string())
                    .or_default() += 1;
            }
        }
        let mut tracked = 0;
        for key in self.by_state.iter().keys() {
            if let Some(state) = FileState::from_code(key?[0]) {
                *stats.products_by_state.entry(state).or_default() += 1;
                tracked += 1;
            }
        }
        let remote = stats.products.saturating_sub(tracked);
        if remote > 0 {
            stats.products_by_state.insert(FileState::Remote, remote);
        }
        for kv in self.files.iter() {
            let (key, value) = kv?;
            let files: Vec<ProductFile> = decode(&key, &value)?;
            stats.files += files.len() as u64;
            stats.bytes_on_disk += complete_bytes(&files);
            for file in &files {
                *stats.files_by_state.entry(file.state).or_default() += 1;
            }
        }
        Ok(stats)
    }

    /// Checks that every record decodes and every index entry matches the records, in both
    /// directions. Returns one line per problem; empty means consistent.
    pub fn verify(&self) -> Result<Vec<String>, CatalogError> {
        let mut problems = Vec::new();
        let mut expected: [BTreeSet<Vec<u8>>; 5] = Default::default();
        let [by_instrument, by_state, by_file_state, by_spatial, made_from] = &mut expected;
        let mut with_files = BTreeSet::new();
        for kv in self.products.iter() {
            let (key, value) = kv?;
            let product: Product = match decode(&key, &value) {
                Ok(p) => p,
                Err(e) => {
                    problems.push(e.to_string());
                    continue;
                }
            };
            let pdsid = &product.pdsid;
            if key.as_ref() != pdsid.as_bytes() {
                problems.push(format!("product stored under {key:?} says it is {pdsid}"));
            }
            let files = match self.files(pdsid) {
                Ok(files) => files,
                Err(e) => {
                    problems.push(e.to_string());
                    continue;
                }
            };
            by_instrument.insert(keys::instrument_key(
                &product.instrument,
                &product.product_type,
                pdsid,
            ));
            let state = product_state(&files);
            if state != FileState::Remote {
                by_state.insert(keys::state_key(state, pdsid));
            }
            if let Some(bbox) = &product.bbox {
                by_spatial.insert(spatial::key(bbox, pdsid));
            }
            if !files.is_empty() {
                with_files.insert(pdsid.as_bytes().to_vec());
            }
            for file in &files {
                if file.state != FileState::Remote {
                    by_file_state.insert(keys::file_state_key(file.state, pdsid, &file.name));
                }
            }
        }
        for key in self.files.iter().keys() {
            let key = key?;
            if !with_files.contains(key.as_ref()) {
                problems.push(format!(
                    "file list {} has no product",
                    String::from_utf8_lossy(&key)
                ));
            }
        }
        for kv in self.artifacts.iter() {
            let (key, value) = kv?;
            match decode::<Artifact>(&key, &value) {
                Ok(artifact) => {
                    if key.as_ref() != keys::artifact_key(artifact.kind, &artifact.name) {
                        problems.push(format!(
                            "artefact stored under {} says it is {} {}",
                            show_key(&key),
                            artifact.kind,
                            artifact.name
                        ));
                    }
                    for input in &artifact.inputs {
                        made_from.insert(keys::made_from_key(input, artifact.kind, &artifact.name));
                    }
                }
                Err(e) => problems.push(e.to_string()),
            }
        }
        for (tree, name, wanted) in [
            (&self.made_from, MADE_FROM_TREE, &*made_from),
            (&self.by_instrument, "idx_instrument", &*by_instrument),
            (&self.by_state, "idx_state", &*by_state),
            (&self.by_file_state, "idx_file_state", &*by_file_state),
            (&self.spatial, "idx_spatial", &*by_spatial),
        ] {
            let mut present = BTreeSet::new();
            for key in tree.iter().keys() {
                present.insert(key?.to_vec());
            }
            for missing in wanted.difference(&present) {
                problems.push(format!("{name} lacks entry {}", show_key(missing)));
            }
            for stray in present.difference(wanted) {
                problems.push(format!("{name} has stray entry {}", show_key(stray)));
            }
        }
        Ok(problems)
    }

    /// Stores job records (the engine's, encoded by it) under their ids, all or none.
    pub fn put_jobs(&self, records: &[(u64, Vec<u8>)]) -> Result<(), CatalogError> {
        let mut batch = sled::Batch::default();
        for (id, bytes) in records {
            batch.insert(&id.to_be_bytes(), bytes.as_slice());
        }
        self.jobs.apply_batch(batch)?;
        Ok(())
    }

    /// Every stored job record, in id order.
    pub fn jobs(&self) -> Result<Vec<(u64, Vec<u8>)>, CatalogError> {
        self.jobs
            .iter()
            .map(|entry| {
                let (key, value) = entry?;
                let id: [u8; 8] = key.as_ref().try_into().map_err(|_| CatalogError::Corrupt {
                    tree: JOBS_TREE,
                    key: show_key(&key),
                    reason: format!("job key is {} bytes, expected 8", key.len()),
                })?;
                Ok((u64::from_be_bytes(id), value.to_vec()))
            })
            .collect()
    }

    /// Stores what a step made, replacing an artefact of the same kind and name (a tile set
    /// cut again into the same folder), with its `idx_made_from` entries, all or none.
    pub fn put_artifact(&self, artifact: &Artifact) -> Result<(), CatalogError> {
        let key = keys::artifact_key(artifact.kind, &artifact.name);
        let value = encode(artifact)?;
        (&self.artifacts, &self.made_from)
            .transaction(|(artifacts, made_from)| {
                if let Some(old) = artifacts.insert(key.as_slice(), value.as_slice())? {
                    let old: Artifact =
                        decode(&key, &old).map_err(ConflictableTransactionError::Abort)?;
                    for input in &old.inputs {
                        made_from.remove(keys::made_from_key(input, old.kind, &old.name))?;
                    }
                }
                for input in &artifact.inputs {
                    made_from.insert(
                        keys::made_from_key(input, artifact.kind, &artifact.name),
                        key.as_slice(),
                    )?;
                }
                Ok(())
            })
            .map_err(tx_error)
    }

    pub fn artifact(
        &self,
        kind: ArtifactKind,
        name: &str,
    ) -> Result<Option<Artifact>, CatalogError> {
        let key = keys::artifact_key(kind, name);
        self.artifacts
            .get(&key)?
            .map(|bytes| decode(&key, &bytes))
            .transpose()
    }

    /// Artefacts of one kind (or all), in key order: by kind name, then name.
    pub fn artifacts(&self, kind: Option<ArtifactKind>) -> Result<Vec<Artifact>, CatalogError> {
        let prefix = kind.map(|k| keys::artifact_key(k, "")).unwrap_or_default();
        self.artifacts
            .scan_prefix(prefix)
            .map(|entry| {
                let (key, value) = entry?;
                decode(&key, &value)
            })
            .collect()
    }

    /// The artefacts made directly from `input`, in the same order as [`Catalog::artifacts`]
    /// (the index keys end with the artefact's key).
    pub fn made_from(&self, input: &Input) -> Result<Vec<Artifact>, CatalogError> {
        let mut found = Vec::new();
        for entry in self.made_from.scan_prefix(keys::input_prefix(input)) {
            let (index_key, key) = entry?;
            let bytes = self
                .artifacts
                .get(&key)?
                .ok_or_else(|| CatalogError::Corrupt {
                    tree: MADE_FROM_TREE,
                    key: show_key(&index_key),
                    reason: "names an artefact that is not stored".into(),
                })?;
            found.push(decode(&key, &bytes)?);
        }
        Ok(found)
    }

    /// Waits until everything written so far is on disk.
    pub fn flush(&self) -> Result<(), CatalogError> {
        self.db.flush()?;
        Ok(())
    }
}

fn complete_bytes(files: &[ProductFile]) -> u64 {
    files
        .iter()
        .filter(|f| f.state == FileState::Complete)
        .filter_map(|f| f.size)
        .sum()
}

fn show_key(key: &[u8]) -> String {
    key.iter()
        .map(|b| match b {
            0 => "/".to_string(),
            b if b.is_ascii_graphic() => (*b as char).to_string(),
            b => format!("\\x{b:02x}"),
        })
        .collect()
}
