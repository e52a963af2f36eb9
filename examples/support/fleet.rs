//! What the fleet benchmarks (and the reconciler's fleet test) share: their command-line numbers and
//! the small configuration they apply.

/// The number after `name` on the command line, else `default`.
pub fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The text after `name` on the command line.
#[allow(dead_code)]
pub fn text_arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// The value at share `p` (0..=1) of `sorted`, nearest rank; 0 when empty.
#[allow(dead_code)]
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The smallest useful configuration: one dataset, one solution with one campaign, every resource
/// tagged (root tags).
pub fn config(group: &str) -> String {
    serde_json::json!({
        "tags": [{"tagKey": "team", "tagValue": "search"}],
        "datasetGroup": {"serviceConfig": {"name": group}},
        "datasets": {"interactions": {
            "dataset": {"serviceConfig": {"name": format!("{group}-interactions")}},
            "schema": {"serviceConfig": {
                "name": format!("{group}-interactions-schema"),
                "schema": {
                    "type": "record", "name": "Interactions",
                    "namespace": "com.amazonaws.personalize.schema",
                    "fields": [
                        {"name": "ITEM_ID", "type": "string"},
                        {"name": "USER_ID", "type": "string"},
                        {"name": "TIMESTAMP", "type": "long"},
                        {"name": "EVENT_TYPE", "type": "string"},
                        {"name": "EVENT_VALUE", "type": "float"}
                    ]
                }
            }}
        }},
        "solutions": [{
            "serviceConfig": {
                "name": format!("{group}-popular"),
                "recipeArn": "arn:aws:personalize:::recipe/aws-popularity-count"
            },
            "campaigns": [{"serviceConfig": {"name": format!("{group}-campaign"), "minProvisionedTPS": 1}}]
        }]
    })
    .to_string()
}
