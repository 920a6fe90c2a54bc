//! Search and ask, the parts that need neither HTTP nor storage: reading a user's query into a
//! lexical query that can never be a syntax error, the query texts each backend matches with,
//! score normalisation, resolving the relative dates of a question, and building an answer.

pub mod answer;
pub mod query;
pub mod score;
pub mod snippets;
pub mod when;

pub use query::LexicalQuery;
pub use score::{Scored, normalize_scores};
