//! The rules that look at more than one value: recipes against jobs and schedules, duplicate names,
//! schema consistency, domains, generated name lengths, filter references.
//!
//! They run on the raw JSON after the shape check and skip whatever has the wrong shape (the shape
//! check has reported it), so a broken file still gets every other finding.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::spec::avro;
use crate::spec::issues::{Findings, Issue, JsonPath};
use crate::spec::kinds::{DatasetType, Domain};
use crate::spec::names::{self, BatchEntry, MAX_NAME_LEN};
use crate::spec::recipes::{self, Recipe};

/// The value at `keys` below `value`, if every step is an object member.
pub(crate) fn at<'a>(value: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().try_fold(value, |v, k| v.as_object()?.get(*k))
}

/// The string at `keys`, if it is one.
pub(crate) fn str_at<'a>(value: &'a Value, keys: &[&str]) -> Option<&'a str> {
    at(value, keys)?.as_str()
}

/// The list at `keys`; empty when absent or not a list.
pub(crate) fn list_at<'a>(value: &'a Value, keys: &[&str]) -> &'a [Value] {
    at(value, keys)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The group's domain, when the file names a valid one.
pub(crate) fn group_domain(root: &Value) -> Option<Domain> {
    str_at(root, &["datasetGroup", "serviceConfig", "domain"])?
        .parse()
        .ok()
}

/// Runs every cross-value rule.
pub(crate) fn check(root: &Value, out: &mut Findings) {
    let domain = group_domain(root);
    check_dataset_group(root, out);
    check_datasets(root, domain, out);
    check_event_tracker(root, out);
    let filter_names = check_filters(root, out);
    check_solutions(root, &filter_names, out);
    check_recommenders(root, domain, out);
}

/// Reports every name after its first use, in the reference's words.
fn duplicates(names: &[(JsonPath, &str)], kind: &str, across: &str, out: &mut Findings) {
    let mut seen = BTreeSet::new();
    for (path, name) in names {
        if !seen.insert(*name) {
            out.error(
                path,
                format!(
                    "duplicate {kind} names found: {name}. Do not use the same {kind} names across {across}"
                ),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// dataset group
// ---------------------------------------------------------------------------------------------------

/// Personalize rejects a role without a key at CreateDatasetGroup (the role exists only to use the
/// key); saying so here spares the user an upload that fails minutes later.
fn check_dataset_group(root: &Value, out: &mut Findings) {
    let Some(config) = at(root, &["datasetGroup", "serviceConfig"]) else {
        return;
    };
    let role = str_at(config, &["roleArn"]).is_some_and(|r| !r.is_empty());
    let key = str_at(config, &["kmsKeyArn"]).is_some_and(|k| !k.is_empty());
    if role && !key {
        let path = JsonPath::root()
            .key("datasetGroup")
            .key("serviceConfig")
            .key("roleArn");
        out.error(
            &path,
            "roleArn is only valid together with kmsKeyArn (the role lets Personalize use the KMS key); add kmsKeyArn or remove roleArn",
        );
    }
}

// ---------------------------------------------------------------------------------------------------
// datasets
// ---------------------------------------------------------------------------------------------------

fn check_datasets(root: &Value, group_domain: Option<Domain>, out: &mut Findings) {
    let Some(datasets) = root.get("datasets").and_then(Value::as_object) else {
        return;
    };
    let path = JsonPath::root().key("datasets");
    if datasets.is_empty() {
        out.warning(&path, "datasets is empty: no dataset is created or imported");
        return;
    }
    if !datasets.contains_key("interactions") {
        out.error(
            &path,
            "You must at minimum create an interactions dataset and declare its schema",
        );
    }
    // Schema name → (where it was first seen, its document).
    let mut schemas: BTreeMap<&str, (String, &Value)> = BTreeMap::new();
    for ty in DatasetType::PARAMETER_FILE {
        let Some(dataset) = datasets.get(ty.key()).filter(|d| d.is_object()) else {
            continue;
        };
        let dataset_path = path.key(ty.key());
        let Some(schema_config) = at(dataset, &["schema", "serviceConfig"]) else {
            if dataset.get("schema").is_none() {
                out.warning(
                    &dataset_path,
                    "no schema: CreateDataset needs one, so this dataset can only be used if it \
                     already exists",
                );
            }
            continue;
        };
        let config_path = dataset_path.key("schema").key("serviceConfig");
        check_schema(schema_config, &config_path, ty, group_domain, &mut schemas, out);
    }
}

/// One dataset's schema block: its domain matches the group's, its name names one document, and its
/// document suits the dataset type (warnings: the reference accepted these).
fn check_schema<'v>(
    schema_config: &'v Value,
    config_path: &JsonPath,
    ty: DatasetType,
    group_domain: Option<Domain>,
    schemas: &mut BTreeMap<&'v str, (String, &'v Value)>,
    out: &mut Findings,
) {
    let schema_domain = str_at(schema_config, &["domain"]).and_then(|d| d.parse().ok());
    if schema_domain != group_domain {
        let show = |d: Option<Domain>| d.map_or("none (Custom)".to_string(), |d| d.to_string());
        out.warning(
            &config_path.key("domain"),
            format!(
                "the schema's domain is {} but the dataset group's is {}; Personalize rejects a \
                 dataset whose schema does not match its group",
                show(schema_domain),
                show(group_domain)
            ),
        );
    }
    let Some(document) = schema_config.get("schema") else {
        return;
    };
    if let Some(name) = str_at(schema_config, &["name"]) {
        match schemas.get(name) {
            Some((first, other)) if *other != document => out.error(
                &config_path.key("name"),
                format!(
                    "schema name {name} is also used at {first} with a different document; a \
                     schema cannot change, so each document needs its own name"
                ),
            ),
            Some(_) => {}
            None => {
                schemas.insert(name, (config_path.to_string(), document));
            }
        }
    }
    if let Ok(schema) = avro::parse(document) {
        let document_path = config_path.key("schema");
        for issue in avro::check_dataset(&schema, ty, schema_domain) {
            let at = if issue.path.is_empty() {
                document_path.to_string()
            } else {
                format!("{document_path}.{}", issue.path)
            };
            // Personalize rejects these at CreateDataset or training, but the reference accepted
            // them (one of its own fixtures lacks TIMESTAMP), so the file stays valid.
            out.warnings.push(Issue {
                path: at,
                message: issue.message,
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// event tracker, filters
// ---------------------------------------------------------------------------------------------------

fn check_event_tracker(root: &Value, out: &mut Findings) {
    let Some(config) = at(root, &["eventTracker", "serviceConfig"]).and_then(Value::as_object) else {
        return;
    };
    if !config.contains_key("name") {
        out.warning(
            &JsonPath::root().key("eventTracker").key("serviceConfig"),
            "no name: no event tracker is created (as in the reference)",
        );
    }
}

/// Checks filter names; returns the declared names.
fn check_filters(root: &Value, out: &mut Findings) -> BTreeSet<String> {
    let mut names = Vec::new();
    for (i, filter) in list_at(root, &["filters"]).iter().enumerate() {
        if let Some(name) = str_at(filter, &["serviceConfig", "name"]) {
            let path = JsonPath::root()
                .key("filters")
                .index(i)
                .key("serviceConfig")
                .key("name");
            names.push((path, name));
        }
    }
    duplicates(&names, "filter", "filters", out);
    names.iter().map(|(_, n)| n.to_string()).collect()
}

// ---------------------------------------------------------------------------------------------------
// solutions
// ---------------------------------------------------------------------------------------------------

/// The instant used to measure generated names: every timestamp has the same length.
fn sample_instant() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}

fn custom_recipe_names() -> String {
    recipes::RECIPES
        .iter()
        .filter(|r| r.domain.is_none())
        .map(|r| r.name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_solutions(root: &Value, filter_names: &BTreeSet<String>, out: &mut Findings) {
    let mut solution_names = Vec::new();
    let mut campaign_names = Vec::new();
    for (i, solution) in list_at(root, &["solutions"]).iter().enumerate() {
        let path = JsonPath::root().key("solutions").index(i);
        let config_path = path.key("serviceConfig");
        let name = str_at(solution, &["serviceConfig", "name"]);
        if let Some(name) = name {
            solution_names.push((config_path.key("name"), name));
        }
        let recipe = solution_recipe(solution, &config_path, out);
        check_training(solution, name, recipe, &path, out);
        for (j, campaign) in list_at(solution, &["campaigns"]).iter().enumerate() {
            let campaign_path = path.key("campaigns").index(j);
            if let Some(recipe) = recipe
                && !recipe.allows_campaign()
            {
                out.error(
                    &campaign_path,
                    format!(
                        "a campaign cannot serve {} (a {} recipe); use batchSegmentJobs",
                        recipe.name, recipe.recipe_type
                    ),
                );
            }
            if let Some(campaign_name) = str_at(campaign, &["serviceConfig", "name"]) {
                campaign_names.push((campaign_path.key("serviceConfig").key("name"), campaign_name));
            }
        }
        check_batch_jobs(
            solution,
            name,
            recipe,
            BatchKind::Inference,
            &path,
            filter_names,
            out,
        );
        check_batch_jobs(
            solution,
            name,
            recipe,
            BatchKind::Segment,
            &path,
            filter_names,
            out,
        );
    }
    duplicates(&solution_names, "solution", "solutions", out);
    duplicates(&campaign_names, "campaign", "campaigns", out);
}

/// Checks the recipe ARN; returns the recipe when it is a known custom recipe.
fn solution_recipe(solution: &Value, config_path: &JsonPath, out: &mut Findings) -> Option<&'static Recipe> {
    let Some(arn) = str_at(solution, &["serviceConfig", "recipeArn"]) else {
        let uses_auto_ml = at(solution, &["serviceConfig", "performAutoML"]).is_some();
        if at(solution, &["serviceConfig"]).is_some_and(Value::is_object) && !uses_auto_ml {
            out.warning(
                config_path,
                "no recipeArn: Personalize needs a recipe to create this solution",
            );
        }
        return None;
    };
    let path = config_path.key("recipeArn");
    match recipes::find_arn(arn) {
        None => {
            out.error(
                &path,
                format!(
                    "unknown recipe {arn:?}; expected {}<name> with one of: {}",
                    recipes::RECIPE_ARN_PREFIX,
                    custom_recipe_names()
                ),
            );
            None
        }
        Some(recipe) if recipe.domain.is_some() => {
            out.error(
                &path,
                format!(
                    "{} is a use case of {} dataset groups: put it in recommenders, not solutions",
                    recipe.name,
                    recipe.domain.map(|d| d.to_string()).unwrap_or_default()
                ),
            );
            None
        }
        Some(recipe) => Some(recipe),
    }
}

/// UPDATE training (the `update` schedule, or `trainingMode: UPDATE`) needs a recipe that supports it.
fn check_training(
    solution: &Value,
    name: Option<&str>,
    recipe: Option<&'static Recipe>,
    path: &JsonPath,
    out: &mut Findings,
) {
    let supports_update = recipe.is_some_and(|r| r.supports_update);
    let has_recipe = str_at(solution, &["serviceConfig", "recipeArn"]).is_some();
    // An unknown recipe is reported once, by solution_recipe.
    if supports_update || (has_recipe && recipe.is_none()) {
        return;
    }
    let update = at(solution, &["workflowConfig", "schedules", "update"]);
    if update.is_some_and(|u| u.as_str() != Some("delete")) {
        out.error(
            &path.key("workflowConfig").key("schedules").key("update"),
            format!(
                "solution {} does not support solution version incremental updates - please use \
                 `full` instead of `update`.",
                name.unwrap_or("(unnamed)")
            ),
        );
    }
    if str_at(solution, &["serviceConfig", "solutionVersion", "trainingMode"]) == Some("UPDATE") {
        out.error(
            &path
                .key("serviceConfig")
                .key("solutionVersion")
                .key("trainingMode"),
            "trainingMode UPDATE needs aws-user-personalization or aws-hrnn-coldstart; use FULL",
        );
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BatchKind {
    Inference,
    Segment,
}

impl BatchKind {
    fn key(self) -> &'static str {
        match self {
            Self::Inference => "batchInferenceJobs",
            Self::Segment => "batchSegmentJobs",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Self::Inference => "batch inference job",
            Self::Segment => "batch segment job",
        }
    }
}

fn check_batch_jobs(
    solution: &Value,
    name: Option<&str>,
    recipe: Option<&'static Recipe>,
    kind: BatchKind,
    path: &JsonPath,
    filter_names: &BTreeSet<String>,
    out: &mut Findings,
) {
    let jobs = list_at(solution, &[kind.key()]);
    for (j, job) in jobs.iter().enumerate() {
        let job_path = path.key(kind.key()).index(j);
        if let Some(recipe) = recipe {
            let allowed = match kind {
                BatchKind::Inference => recipe.allows_batch_inference(),
                BatchKind::Segment => recipe.allows_batch_segment(),
            };
            if !allowed {
                let hint = match kind {
                    BatchKind::Inference if recipe.is_segmentation() => "; use batchSegmentJobs",
                    BatchKind::Segment if recipe.allows_batch_inference() => {
                        "; use batchInferenceJobs (batch segment jobs need aws-item-affinity or \
                         aws-item-attribute-affinity)"
                    }
                    _ => "",
                };
                out.error(
                    &job_path,
                    format!(
                        "Personalize has no {} for {} (a {} recipe){hint}",
                        kind.noun(),
                        recipe.name,
                        recipe.recipe_type
                    ),
                );
            }
        }
        if let Some(name) = name {
            let entry = BatchEntry {
                index: j,
                count: jobs.len(),
            };
            let job_name = names::batch_job_name(name, entry, sample_instant());
            if job_name.len() > MAX_NAME_LEN {
                out.error(
                    &job_path,
                    format!(
                        "The generated {} name {job_name} is longer than {MAX_NAME_LEN} characters. \
                         Use a shorter solution name.",
                        kind.noun()
                    ),
                );
            }
        }
        if let Some(arn) = str_at(job, &["serviceConfig", "filterArn"]) {
            let declared = arn
                .rsplit_once(":filter/")
                .is_some_and(|(_, filter)| filter_names.contains(filter));
            if !declared {
                out.warning(
                    &job_path.key("serviceConfig").key("filterArn"),
                    format!(
                        "{arn} does not name a filter of this file; the job fails unless that \
                         filter exists"
                    ),
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// recommenders
// ---------------------------------------------------------------------------------------------------

fn check_recommenders(root: &Value, group_domain: Option<Domain>, out: &mut Findings) {
    let recommenders = list_at(root, &["recommenders"]);
    if !recommenders.is_empty() && group_domain.is_none() {
        out.warning(
            &JsonPath::root().key("recommenders"),
            "recommenders need a Domain dataset group (datasetGroup.serviceConfig.domain); \
             Personalize rejects them in this group",
        );
    }
    let mut names = Vec::new();
    for (i, recommender) in recommenders.iter().enumerate() {
        let config_path = JsonPath::root().key("recommenders").index(i).key("serviceConfig");
        if let Some(name) = str_at(recommender, &["serviceConfig", "name"]) {
            names.push((config_path.key("name"), name));
        }
        let Some(arn) = str_at(recommender, &["serviceConfig", "recipeArn"]) else {
            continue;
        };
        let path = config_path.key("recipeArn");
        match recipes::find_arn(arn) {
            Some(Recipe {
                domain: Some(recipe_domain),
                ..
            }) => {
                if let Some(domain) = group_domain
                    && *recipe_domain != domain
                {
                    out.error(
                        &path,
                        format!(
                            "{arn} is a {recipe_domain} use case but the dataset group's domain is \
                             {domain}"
                        ),
                    );
                }
            }
            Some(recipe) => out.error(
                &path,
                format!(
                    "{} is a custom recipe: put it in solutions; recommenders take a domain use \
                     case such as aws-ecomm-recommended-for-you or aws-vod-top-picks",
                    recipe.name
                ),
            ),
            None => {
                let use_cases: Vec<&str> = recipes::RECIPES
                    .iter()
                    .filter(|r| r.domain.is_some() && (group_domain.is_none() || r.domain == group_domain))
                    .map(|r| r.name)
                    .collect();
                out.error(
                    &path,
                    format!(
                        "unknown recipe {arn:?}; expected {}<use case> with one of: {}",
                        recipes::RECIPE_ARN_PREFIX,
                        use_cases.join(", ")
                    ),
                )
            }
        }
    }
    duplicates(&names, "recommender", "recommenders", out);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run(root: Value) -> Findings {
        let mut out = Findings::default();
        check(&root, &mut out);
        out
    }

    fn solution(recipe: &str, extra: Value) -> Value {
        let mut s = json!({"serviceConfig": {"name": "sol", "recipeArn": format!("arn:aws:personalize:::recipe/{recipe}")}});
        if let (Some(target), Some(more)) = (s.as_object_mut(), extra.as_object()) {
            for (k, v) in more {
                target.insert(k.clone(), v.clone());
            }
        }
        s
    }

    fn with_solutions(solutions: Value) -> Value {
        json!({"datasetGroup": {"serviceConfig": {"name": "g"}}, "solutions": solutions})
    }

    fn paths(issues: &[Issue]) -> Vec<&str> {
        issues.iter().map(|i| i.path.as_str()).collect()
    }

    #[test]
    fn the_update_schedule_needs_an_updatable_recipe() {
        let schedules = json!({"workflowConfig": {"schedules": {"update": "cron(0 0 ? * 1 *)"}}});
        let sims = run(with_solutions(json!([solution("aws-sims", schedules.clone())])));
        assert_eq!(sims.errors.len(), 1);
        assert_eq!(
            sims.errors[0].message,
            "solution sol does not support solution version incremental updates - please use `full` \
             instead of `update`."
        );
        for ok in ["aws-user-personalization", "aws-hrnn-coldstart"] {
            assert!(
                run(with_solutions(json!([solution(ok, schedules.clone())])))
                    .errors
                    .is_empty(),
                "{ok}"
            );
        }
        let delete = json!({"workflowConfig": {"schedules": {"update": "delete"}}});
        assert!(
            run(with_solutions(json!([solution("aws-sims", delete)])))
                .errors
                .is_empty()
        );
    }

    #[test]
    fn training_mode_update_needs_an_updatable_recipe() {
        let version = json!({"serviceConfig": {"name": "sol", "recipeArn": "arn:aws:personalize:::recipe/aws-sims", "solutionVersion": {"trainingMode": "UPDATE"}}});
        let out = run(with_solutions(json!([version])));
        assert_eq!(
            paths(&out.errors),
            ["solutions[0].serviceConfig.solutionVersion.trainingMode"]
        );
    }

    #[test]
    fn unknown_and_domain_recipes_are_not_solutions() {
        let out = run(with_solutions(json!([solution("aws-nonsense", json!({}))])));
        assert_eq!(paths(&out.errors), ["solutions[0].serviceConfig.recipeArn"]);
        assert!(out.errors[0].message.contains("aws-user-personalization"));
        let domain = run(with_solutions(json!([solution("aws-vod-top-picks", json!({}))])));
        assert!(domain.errors[0].message.contains("put it in recommenders"));
    }

    #[test]
    fn a_solution_without_recipe_is_a_warning_unless_auto_ml_was_asked() {
        let bare = run(with_solutions(
            json!([{"serviceConfig": {"name": "s"}, "batchSegmentJobs": [{}], "campaigns": [{"serviceConfig": {"name": "c"}}]}]),
        ));
        assert!(
            bare.errors.is_empty(),
            "job kinds are not checked without a recipe"
        );
        assert_eq!(paths(&bare.warnings), ["solutions[0].serviceConfig"]);
        let auto_ml = run(with_solutions(
            json!([{"serviceConfig": {"name": "s", "performAutoML": true}}]),
        ));
        assert!(
            auto_ml.warnings.is_empty(),
            "the shape check already warns about performAutoML"
        );
    }

    #[test]
    fn jobs_and_campaigns_must_suit_the_recipe() {
        let affinity = run(with_solutions(json!([solution(
            "aws-item-affinity",
            json!({"campaigns": [{"serviceConfig": {"name": "c"}}], "batchInferenceJobs": [{}], "batchSegmentJobs": [{}]})
        )])));
        assert_eq!(
            paths(&affinity.errors),
            ["solutions[0].campaigns[0]", "solutions[0].batchInferenceJobs[0]"]
        );
        assert!(affinity.errors[1].message.contains("use batchSegmentJobs"));
        let up = run(with_solutions(json!([solution(
            "aws-user-personalization",
            json!({"batchSegmentJobs": [{}]})
        )])));
        assert_eq!(paths(&up.errors), ["solutions[0].batchSegmentJobs[0]"]);
        for no_batch in ["aws-trending-now", "aws-next-best-action"] {
            let out = run(with_solutions(json!([solution(
                no_batch,
                json!({"batchInferenceJobs": [{}]})
            )])));
            assert_eq!(
                paths(&out.errors),
                ["solutions[0].batchInferenceJobs[0]"],
                "{no_batch}"
            );
        }
    }

    #[test]
    fn generated_batch_names_must_fit_in_63_characters() {
        let named = |name: &str, jobs: usize| {
            let jobs: Vec<Value> = (0..jobs).map(|_| json!({})).collect();
            run(with_solutions(
                json!([{"serviceConfig": {"name": name, "recipeArn": "arn:aws:personalize:::recipe/aws-sims"}, "batchInferenceJobs": jobs}]),
            ))
        };
        // batch_ + name + _ + 19-character timestamp: 37 characters fit, 38 do not.
        assert!(named(&"s".repeat(37), 1).errors.is_empty());
        let long = named(&"s".repeat(38), 1);
        assert_eq!(long.errors.len(), 1);
        assert!(
            long.errors[0]
                .message
                .starts_with("The generated batch inference job name batch_sss")
        );
        assert!(
            long.errors[0]
                .message
                .ends_with("is longer than 63 characters. Use a shorter solution name.")
        );
        // Several entries are numbered, which takes two more characters.
        assert_eq!(named(&"s".repeat(36), 2).errors.len(), 2);
        assert!(named(&"s".repeat(35), 2).errors.is_empty());
    }

    #[test]
    fn duplicate_names_are_errors_after_the_first() {
        let out = run(json!({
            "datasetGroup": {"serviceConfig": {"name": "g"}},
            "filters": [
                {"serviceConfig": {"name": "f", "filterExpression": "EXCLUDE ItemID WHERE Items.X IN (\"a\")"}},
                {"serviceConfig": {"name": "f", "filterExpression": "EXCLUDE ItemID WHERE Items.X IN (\"b\")"}}
            ],
            "solutions": [
                solution("aws-user-personalization", json!({"campaigns": [{"serviceConfig": {"name": "c"}}]})),
                solution("aws-user-personalization", json!({"campaigns": [{"serviceConfig": {"name": "c"}}]}))
            ],
            "recommenders": [
                {"serviceConfig": {"name": "r", "recipeArn": "arn:aws:personalize:::recipe/aws-vod-top-picks"}},
                {"serviceConfig": {"name": "r", "recipeArn": "arn:aws:personalize:::recipe/aws-vod-top-picks"}}
            ]
        }));
        let messages: Vec<&str> = out.errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "duplicate filter names found: f. Do not use the same filter names across filters",
                "duplicate solution names found: sol. Do not use the same solution names across solutions",
                "duplicate campaign names found: c. Do not use the same campaign names across campaigns",
                "duplicate recommender names found: r. Do not use the same recommender names across recommenders",
            ]
        );
        assert_eq!(out.errors[1].path, "solutions[1].serviceConfig.name");
    }

    #[test]
    fn batch_filters_should_be_declared_in_the_file() {
        let job = |arn: &str| {
            run(json!({
                "datasetGroup": {"serviceConfig": {"name": "g"}},
                "filters": [{"serviceConfig": {"name": "mine", "filterExpression": "EXCLUDE ItemID WHERE Items.X IN (\"a\")"}}],
                "solutions": [solution("aws-sims", json!({"batchInferenceJobs": [{"serviceConfig": {"filterArn": arn}}]}))]
            }))
        };
        assert!(
            job("arn:aws:personalize:us-east-1:123456789012:filter/mine")
                .warnings
                .is_empty()
        );
        let other = job("arn:aws:personalize:us-east-1:123456789012:filter/theirs");
        assert_eq!(
            paths(&other.warnings),
            ["solutions[0].batchInferenceJobs[0].serviceConfig.filterArn"]
        );
        assert!(other.errors.is_empty());
    }

    #[test]
    fn recommenders_need_a_use_case_of_the_groups_domain() {
        let group = |domain: Option<&str>, recipe: &str| {
            let mut config = json!({"name": "g"});
            if let (Some(d), Some(map)) = (domain, config.as_object_mut()) {
                map.insert("domain".into(), json!(d));
            }
            run(json!({
                "datasetGroup": {"serviceConfig": config},
                "recommenders": [{"serviceConfig": {"name": "r", "recipeArn": format!("arn:aws:personalize:::recipe/{recipe}")}}]
            }))
        };
        let ok = group(Some("ECOMMERCE"), "aws-ecomm-recommended-for-you");
        assert!(ok.errors.is_empty() && ok.warnings.is_empty());
        assert_eq!(
            group(Some("VIDEO_ON_DEMAND"), "aws-ecomm-recommended-for-you")
                .errors
                .len(),
            1
        );
        assert_eq!(group(Some("ECOMMERCE"), "aws-sims").errors.len(), 1);
        assert_eq!(group(Some("ECOMMERCE"), "aws-ecomm-nothing").errors.len(), 1);
        let custom_group = group(None, "aws-ecomm-recommended-for-you");
        assert!(custom_group.errors.is_empty());
        assert_eq!(paths(&custom_group.warnings), ["recommenders"]);
    }

    fn users_schema(fields: Value) -> Value {
        json!({"type": "record", "name": "Users", "fields": fields})
    }

    fn with_datasets(datasets: Value) -> Value {
        json!({"datasetGroup": {"serviceConfig": {"name": "g"}}, "datasets": datasets})
    }

    fn interactions() -> Value {
        json!({
            "dataset": {"serviceConfig": {"name": "i"}},
            "schema": {"serviceConfig": {"name": "i-schema", "schema": {"type": "record", "name": "Interactions", "fields": [
                {"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"}, {"name": "TIMESTAMP", "type": "long"}
            ]}}}
        })
    }

    #[test]
    fn datasets_need_interactions_once_anything_is_declared() {
        let users = json!({"dataset": {"serviceConfig": {"name": "u"}}});
        let out = run(with_datasets(json!({"users": users})));
        assert_eq!(
            out.errors[0].message,
            "You must at minimum create an interactions dataset and declare its schema"
        );
        let empty = run(with_datasets(json!({})));
        assert!(empty.errors.is_empty());
        assert_eq!(paths(&empty.warnings), ["datasets"]);
    }

    #[test]
    fn a_schema_name_names_one_document() {
        let user_fields = json!([{"name": "USER_ID", "type": "string"}, {"name": "AGE", "type": "int"}]);
        let same = |doc: Value| {
            run(with_datasets(json!({
                "interactions": interactions(),
                "users": {"dataset": {"serviceConfig": {"name": "u"}}, "schema": {"serviceConfig": {"name": "i-schema", "schema": doc}}}
            })))
        };
        let clash = same(users_schema(user_fields));
        assert_eq!(paths(&clash.errors), ["datasets.users.schema.serviceConfig.name"]);
        let reuse = same(interactions()["schema"]["serviceConfig"]["schema"].clone());
        assert!(reuse.errors.is_empty(), "the same document may be shared");
    }

    #[test]
    fn dataset_type_rules_and_missing_schemas_are_warnings() {
        let no_timestamp = json!({
            "dataset": {"serviceConfig": {"name": "i"}},
            "schema": {"serviceConfig": {"name": "s", "schema": {"type": "record", "name": "Interactions", "fields": [
                {"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"}
            ]}}}
        });
        let out = run(with_datasets(
            json!({"interactions": no_timestamp, "items": {"dataset": {"serviceConfig": {"name": "it"}}}}),
        ));
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        assert_eq!(
            paths(&out.warnings),
            [
                "datasets.interactions.schema.serviceConfig.schema.fields",
                "datasets.items"
            ]
        );
        assert!(out.warnings[0].message.contains("TIMESTAMP"));
    }

    #[test]
    fn schema_domains_should_match_the_group() {
        let mut root = with_datasets(json!({"interactions": interactions()}));
        root["datasetGroup"]["serviceConfig"]["domain"] = json!("ECOMMERCE");
        let out = run(root);
        assert!(
            out.warnings
                .iter()
                .any(|w| w.path == "datasets.interactions.schema.serviceConfig.domain")
        );
    }

    #[test]
    fn an_event_tracker_without_a_name_is_skipped_with_a_warning() {
        let out = run(
            json!({"datasetGroup": {"serviceConfig": {"name": "g"}}, "eventTracker": {"serviceConfig": {}}}),
        );
        assert_eq!(paths(&out.warnings), ["eventTracker.serviceConfig"]);
        let none = run(json!({"datasetGroup": {"serviceConfig": {"name": "g"}}, "eventTracker": {}}));
        assert!(none.warnings.is_empty());
    }
}
