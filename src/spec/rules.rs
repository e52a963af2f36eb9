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
            continue;
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
