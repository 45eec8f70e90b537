//! Searching ODE and storing what it finds, page by page, as the pages arrive.

use crate::catalog::{Catalog, CatalogError, UpsertCounts};
use crate::ode::{OdeClient, OdeError, OdeQuery, SearchSummary};
use crate::product::ProductEntry;
use crate::progress::Progress;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Ode(#[from] OdeError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// Runs a paged search; every page is handed to `keep` and, when a catalog is given, stored
/// in it (one transaction per page) before the next page is asked for.
pub async fn search(
    client: &OdeClient,
    query: &OdeQuery,
    page_size: u64,
    max: Option<u64>,
    catalog: Option<&Catalog>,
    progress: &dyn Progress,
    mut keep: impl FnMut(Vec<ProductEntry>),
) -> Result<(SearchSummary, UpsertCounts), SearchError> {
    let mut stored = UpsertCounts::default();
    let mut started = false;
    let summary = client
        .search(query, page_size, max, |page, summary| {
            if !started {
                progress.start(
                    "search",
                    max.map_or(summary.count, |m| m.min(summary.count)),
                );
                started = true;
            }
            progress.advance(page.len() as u64);
            if let Some(catalog) = catalog {
                // sled is blocking I/O: keep it off the async workers' hot path.
                let outcomes = tokio::task::block_in_place(|| catalog.upsert(&page))?;
                stored.add(&outcomes);
            }
            keep(page);
            Ok::<(), SearchError>(())
        })
        .await?;
    progress.finish();
    Ok((summary, stored))
}
