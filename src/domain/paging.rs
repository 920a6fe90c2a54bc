//! Pagination bounds (API.md §1, §11.1): any integer, however large or negative, is clamped
//! into the route's range.

/// `value` (or `default` when absent) clamped into `[min, max]`.
pub fn clamp(value: Option<i64>, default: i64, min: i64, max: i64) -> i64 {
    value.unwrap_or(default).clamp(min, max)
}

/// A page: `limit` in `[1, max_limit]`, `offset >= 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

impl Page {
    pub fn new(
        limit: Option<i64>,
        offset: Option<i64>,
        default_limit: i64,
        max_limit: i64,
    ) -> Self {
        Page {
            limit: clamp(limit, default_limit, 1, max_limit),
            offset: clamp(offset, 0, 0, i64::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_clamp_into_range() {
        let page = Page::new(Some(0), Some(-5), 25, 1000);
        assert_eq!(
            page,
            Page {
                limit: 1,
                offset: 0
            }
        );
        let page = Page::new(Some(i64::MAX), None, 25, 1000);
        assert_eq!(page.limit, 1000);
        assert_eq!(Page::new(None, None, 25, 1000).limit, 25);
    }
}
