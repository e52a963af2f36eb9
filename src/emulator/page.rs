//! List pagination: newest first, `maxResults` per page, opaque `nextToken`s that round-trip.
//!
//! A token records the operation, the list's filter and the creation sequence number of the last item
//! returned. The next page continues below that number, so pages stay stable while resources are
//! created or deleted in between. Anything that does not decode to a token of the same list is
//! `InvalidNextTokenException`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ErrorCode};
use super::input::Input;

#[derive(Serialize, Deserialize)]
struct Token {
    /// The List operation that issued it.
    op: String,
    /// The list's filter (parent ARN and the like), so a token cannot be replayed on another list.
    query: String,
    /// Sequence number of the last item already returned.
    after: u64,
}

/// One page of a list and the token for the next one.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

fn bad_token() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidNextToken,
        "The next token is not valid for this request",
    )
}

/// Pages `items` (any order; each with its creation sequence number) for the List call `op` whose
/// filter is `query`, reading `nextToken` and `maxResults` from `input`.
pub fn paginate<T>(
    input: &Input,
    op: &str,
    query: &str,
    mut items: Vec<(u64, T)>,
) -> Result<Page<T>, ApiError> {
    let max = input.max_results()?;
    let after = match input.next_token()? {
        None => None,
        Some(text) => {
            let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad_token())?;
            let token: Token = serde_json::from_slice(&bytes).map_err(|_| bad_token())?;
            if token.op != op || token.query != query {
                return Err(bad_token());
            }
            Some(token.after)
        }
    };
    items.sort_by_key(|item| std::cmp::Reverse(item.0));
    let mut rest = items
        .into_iter()
        .filter(|(seq, _)| after.is_none_or(|a| *seq < a))
        .peekable();
    let mut page = Vec::with_capacity(max.min(100));
    let mut last = None;
    while page.len() < max {
        let Some((seq, item)) = rest.next() else { break };
        last = Some(seq);
        page.push(item);
    }
    let next_token = match (rest.peek(), last) {
        (Some(_), Some(after)) => {
            let token = Token {
                op: op.to_string(),
                query: query.to_string(),
                after,
            };
            let json = serde_json::to_vec(&token).map_err(|e| ApiError::invalid(format!("token: {e}")))?;
            Some(URL_SAFE_NO_PAD.encode(json))
        }
        _ => None,
    };
    Ok(Page {
        items: page,
        next_token,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn input(v: serde_json::Value) -> Input {
        Input::from_body(v.to_string().as_bytes()).expect("object")
    }

    fn items() -> Vec<(u64, u64)> {
        (1..=7).map(|i| (i, i)).collect()
    }

    #[test]
    fn pages_newest_first_until_exhausted() {
        let p1 = paginate(&input(json!({"maxResults": 3})), "ListX", "", items()).expect("page 1");
        assert_eq!(p1.items, vec![7, 6, 5]);
        let t1 = p1.next_token.expect("more pages");
        let p2 = paginate(
            &input(json!({"maxResults": 3, "nextToken": t1})),
            "ListX",
            "",
            items(),
        )
        .expect("page 2");
        assert_eq!(p2.items, vec![4, 3, 2]);
        let t2 = p2.next_token.expect("more pages");
        let p3 = paginate(
            &input(json!({"maxResults": 3, "nextToken": t2})),
            "ListX",
            "",
            items(),
        )
        .expect("page 3");
        assert_eq!(p3.items, vec![1]);
        assert!(p3.next_token.is_none());
    }

    #[test]
    fn an_exact_fit_has_no_token() {
        let p = paginate(&input(json!({"maxResults": 7})), "ListX", "", items()).expect("page");
        assert_eq!(p.items.len(), 7);
        assert!(p.next_token.is_none());
    }

    #[test]
    fn foreign_or_garbled_tokens_are_rejected() {
        let t = paginate(&input(json!({"maxResults": 1})), "ListX", "a", items())
            .expect("page")
            .next_token
            .expect("token");
        for (op, query, token) in [
            ("ListY", "a", t.clone()),
            ("ListX", "b", t.clone()),
            ("ListX", "a", "garbage!".to_string()),
            ("ListX", "a", URL_SAFE_NO_PAD.encode("{}")),
        ] {
            let e = paginate(&input(json!({ "nextToken": token })), op, query, items()).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidNextToken);
        }
    }
}
