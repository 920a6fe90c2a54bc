//! Search and ask, the parts that need neither HTTP nor storage: reading a user's query into a
//! lexical query that can never be a syntax error, the query texts each backend matches with,
//! score normalisation, the embeddings client and rank fusion of hybrid search, resolving the relative dates of a question, and building an answer.

pub mod answer;
pub mod embed;
pub mod fuse;
pub mod query;
pub mod score;
pub mod snippets;
pub mod when;

pub use query::LexicalQuery;
pub use score::{Scored, normalize_scores};

/// How many of a user's newest matches a lexical search ranks (more when a page reaches further).
/// Ranking costs per match and a common word matches a large share of a big collection, so an
/// unbounded search grows with the collection; within this bound every match is ranked exactly,
/// and beyond it the newest matches are the ones ranked (docs/DECISIONS.md, "Search").
pub const CANDIDATES: i64 = 200;
