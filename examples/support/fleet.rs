//! What the fleet benchmarks share: their command-line numbers and the small configuration they apply.

pub fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The smallest useful configuration: one dataset, one solution with one campaign.
pub fn config(group: &str) -> String {
    serde_json::json!({
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
