//! Updates in place: what Personalize can change is updated, what it cannot is a conflict.

use serde_json::json;

use super::*;

/// [`converged`] for `spec`, with the filter as [`file`] first wrote it.
fn with_old_filter(spec: &Spec) -> Observation {
    let mut o = converged(spec);
    o.filters.get_mut("g1-clicked").expect("filter").expression =
        super::spec().filters[0].filter_expression.clone();
    o
}

fn with(edit: impl FnOnce(&mut serde_json::Value)) -> Spec {
    let mut f = file();
    edit(&mut f);
    spec_of(&f)
}

#[test]
fn a_changed_auto_training_setting_is_an_update_that_does_not_hold_up_the_solution_s_dependants() {
    let spec = with(|f| {
        f["solutions"][0]["serviceConfig"]["performAutoTraining"] = json!(false);
        f["solutions"][0]["serviceConfig"]["solutionConfig"] =
            json!({"autoTrainingConfig": {"schedulingExpression": "rate(3 days)"}});
    });
    let mut o = converged(&spec);
    o.solutions.get_mut("sol-a").expect("sol-a").config =
        Some(json!({"autoTrainingConfig": {"schedulingExpression": "rate(7 days)"}}));
    let plan = plan(&spec, &o, &data(), &run());
    match &step(&plan, Kind::Solution, "sol-a").action {
        Action::Update { request, changes } => {
            assert_eq!(
                changes,
                &[
                    "performAutoTraining: true → false".to_string(),
                    "solutionConfig.autoTrainingConfig.schedulingExpression: \"rate(7 days)\" → \"rate(3 days)\""
                        .to_string()
                ]
            );
            match request {
                Request::UpdateSolution {
                    solution_arn,
                    perform_auto_training,
                    auto_training_config,
                    events_config,
                } => {
                    assert_eq!(solution_arn, &format!("{P}solution/sol-a"));
                    assert_eq!(*perform_auto_training, Some(false));
                    assert_eq!(
                        auto_training_config
                            .as_ref()
                            .and_then(|a| a.scheduling_expression.as_deref()),
                        Some("rate(3 days)")
                    );
                    assert!(events_config.is_none());
                }
                other => panic!("{other:?}"),
            }
        }
        other => panic!("{other:?}"),
    }
    // The solution serves its old settings meanwhile: its version and campaign stay as they are.
    assert_eq!(step(&plan, Kind::SolutionVersion, "sol-a").action, Action::Adopt);
    assert_eq!(step(&plan, Kind::Campaign, "camp-a").action, Action::Adopt);
}

#[test]
fn an_update_in_progress_is_waited_for_and_a_failed_one_is_reported_not_repeated() {
    let spec = with(|f| f["solutions"][0]["serviceConfig"]["performAutoTraining"] = json!(false));
    let mut o = converged(&spec);
    let arn = format!("{P}solution/sol-a");
    o.updates.insert(
        arn.clone(),
        UpdateObs {
            status: "UPDATE IN_PROGRESS".into(),
            failure_reason: None,
            requested: json!({"performAutoTraining": false}),
        },
    );
    let plan1 = plan(&spec, &o, &data(), &run());
    assert!(
        matches!(&step(&plan1, Kind::Solution, "sol-a").action, Action::Wait { status } if status.contains("UPDATE IN_PROGRESS")),
        "{:?}",
        step(&plan1, Kind::Solution, "sol-a")
    );
    assert_eq!(step(&plan1, Kind::Campaign, "camp-a").action, Action::Adopt);

    let u = o.updates.get_mut(&arn).expect("update");
    u.status = "CREATE FAILED".into();
    u.failure_reason = Some("no".into());
    let plan2 = plan(&spec, &o, &data(), &run());
    assert!(
        matches!(&step(&plan2, Kind::Solution, "sol-a").action, Action::Failed { reason } if reason.contains("no")),
        "{:?}",
        step(&plan2, Kind::Solution, "sol-a")
    );
    // A different request than the one that failed is made.
    let spec3 = with(|f| {
        f["solutions"][0]["serviceConfig"]["performAutoTraining"] = json!(false);
        f["solutions"][0]["serviceConfig"]["solutionConfig"] =
            json!({"autoTrainingConfig": {"schedulingExpression": "rate(3 days)"}});
    });
    let plan3 = plan(&spec3, &o, &data(), &run());
    assert!(matches!(
        &step(&plan3, Kind::Solution, "sol-a").action,
        Action::Update { .. }
    ));
}

#[test]
fn unset_auto_training_keeps_what_exists_and_fixed_settings_stay_conflicts() {
    // sol-b has a schedule, so a new one would get performAutoTraining false; the existing true is kept.
    let spec = spec();
    let o = converged(&spec);
    let plan1 = plan(&spec, &o, &data(), &run());
    let sol_b = step(&plan1, Kind::Solution, "sol-b");
    assert_eq!(sol_b.action, Action::Adopt);
    assert!(
        sol_b.note.as_deref().is_some_and(|n| n.contains("kept")),
        "{sol_b:?}"
    );

    let spec = with(|f| {
        f["solutions"][0]["serviceConfig"]["solutionConfig"] =
            json!({"algorithmHyperParameters": {"hidden_dimension": "64"}});
    });
    let plan2 = plan(&spec, &converged(&spec), &data(), &run());
    match &step(&plan2, Kind::Solution, "sol-a").action {
        Action::Conflict { differences } => assert!(
            differences[0].contains("algorithmHyperParameters"),
            "{differences:?}"
        ),
        other => panic!("{other:?}"),
    }
}

fn domain_file() -> serde_json::Value {
    json!({
        "datasetGroup": {"serviceConfig": {"name": "g1", "domain": "ECOMMERCE"}},
        "recommenders": [{"serviceConfig": {"name": "rec", "recipeArn": "arn:aws:personalize:::recipe/aws-ecomm-recommended-for-you",
            "recommenderConfig": {"minRecommendationRequestsPerSecond": 2}}}]
    })
}

fn domain_observed(min_rps: i32) -> Observation {
    let mut o = Observation {
        group: Some(DatasetGroupObs {
            meta: meta("dataset-group/g1", "ACTIVE", t(0)),
            domain: Some("ECOMMERCE".into()),
            kms_key_arn: None,
        }),
        ..Observation::default()
    };
    o.recommenders.insert(
        "rec".into(),
        RecommenderObs {
            meta: meta("recommender/rec", "ACTIVE", t(1)),
            group_arn: format!("{P}dataset-group/g1"),
            recipe_arn: "arn:aws:personalize:::recipe/aws-ecomm-recommended-for-you".into(),
            config: Some(json!({"minRecommendationRequestsPerSecond": min_rps, "enableMetadataWithRecommendations": false})),
        },
    );
    o
}

#[test]
fn a_changed_recommender_config_is_an_update_and_a_changed_recipe_a_conflict() {
    let spec = spec_of(&domain_file());
    let plan1 = plan(&spec, &domain_observed(1), &DataFound::default(), &run());
    match &step(&plan1, Kind::Recommender, "rec").action {
        Action::Update {
            request:
                Request::UpdateRecommender {
                    recommender_arn,
                    recommender_config,
                },
            changes,
        } => {
            assert_eq!(recommender_arn, &format!("{P}recommender/rec"));
            assert_eq!(recommender_config.min_recommendation_requests_per_second, Some(2));
            assert_eq!(
                changes,
                &["recommenderConfig.minRecommendationRequestsPerSecond: 1 → 2"]
            );
        }
        other => panic!("{other:?}"),
    }
    let plan2 = plan(&spec, &domain_observed(2), &DataFound::default(), &run());
    assert_eq!(step(&plan2, Kind::Recommender, "rec").action, Action::Adopt);

    let mut o = domain_observed(1);
    o.recommenders.get_mut("rec").expect("rec").recipe_arn =
        "arn:aws:personalize:::recipe/aws-ecomm-popular-items-by-views".into();
    let plan3 = plan(&spec, &o, &DataFound::default(), &run());
    assert!(matches!(
        &step(&plan3, Kind::Recommender, "rec").action,
        Action::Conflict { differences } if differences[0].contains("recipeArn")
    ));
}

const NEW_EXPRESSION: &str = "EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN (\"click\")";

#[test]
fn a_changed_filter_expression_is_a_conflict_that_says_how_to_opt_in_to_replacing_it() {
    let spec = with(|f| f["filters"][0]["serviceConfig"]["filterExpression"] = json!(NEW_EXPRESSION));
    let plan = plan(&spec, &with_old_filter(&spec), &data(), &run());
    match &step(&plan, Kind::Filter, "g1-clicked").action {
        Action::Conflict { differences } => {
            assert!(differences[0].contains("EXCLUDE ItemID"), "{differences:?}");
            assert!(
                differences[0].contains("datasetGroup.workflowConfig.replaceFilters"),
                "{differences:?}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn with_replace_filters_a_changed_filter_is_deleted_waited_for_and_created_again() {
    let spec = with(|f| {
        f["filters"][0]["serviceConfig"]["filterExpression"] = json!(NEW_EXPRESSION);
        f["datasetGroup"]["workflowConfig"] = json!({"replaceFilters": true});
    });
    assert!(spec.dataset_group.replace_filters);
    let mut o = with_old_filter(&spec);
    let plan1 = plan(&spec, &o, &data(), &run());
    match &step(&plan1, Kind::Filter, "g1-clicked").action {
        Action::Update {
            request: Request::DeleteFilter { filter_arn },
            changes,
        } => {
            assert_eq!(filter_arn, &format!("{P}filter/g1-clicked"));
            assert!(changes[0].contains("replaced"), "{changes:?}");
        }
        other => panic!("{other:?}"),
    }
    o.filters.get_mut("g1-clicked").expect("filter").meta.status = "DELETE IN_PROGRESS".into();
    let plan2 = plan(&spec, &o, &data(), &run());
    assert!(matches!(
        &step(&plan2, Kind::Filter, "g1-clicked").action,
        Action::Wait { .. }
    ));
    o.filters.remove("g1-clicked");
    let plan3 = plan(&spec, &o, &data(), &run());
    match &step(&plan3, Kind::Filter, "g1-clicked").action {
        Action::Create {
            request: Some(Request::CreateFilter {
                filter_expression, ..
            }),
            ..
        } => assert_eq!(filter_expression, NEW_EXPRESSION),
        other => panic!("{other:?}"),
    }
    // An unchanged filter is left alone even with the opt-in.
    let same = with(|f| f["datasetGroup"]["workflowConfig"] = json!({"replaceFilters": true}));
    let plan4 = plan(&same, &converged(&same), &data(), &run());
    assert_eq!(step(&plan4, Kind::Filter, "g1-clicked").action, Action::Adopt);
}

#[test]
fn tags_that_differ_from_the_file_are_an_update_and_unread_tags_are_not_compared() {
    let spec = spec();
    let mut o = converged(&spec);
    let camp = format!("{P}campaign/camp-a");
    // The file gives camp-a the root tag team=recs only.
    o.tags.insert(
        camp.clone(),
        vec![
            crate::spec::model::Tag {
                key: "team".into(),
                value: "ads".into(),
            },
            crate::spec::model::Tag {
                key: "owner".into(),
                value: "someone".into(),
            },
        ],
    );
    let plan1 = plan(&spec, &o, &data(), &run());
    match &step(&plan1, Kind::Campaign, "camp-a").action {
        Action::Update {
            request:
                Request::TagResource {
                    resource_arn,
                    tags,
                    untag_keys,
                },
            changes,
        } => {
            assert_eq!(resource_arn, &camp);
            assert_eq!(tags.len(), 1);
            assert_eq!((tags[0].key.as_str(), tags[0].value.as_str()), ("team", "recs"));
            assert_eq!(untag_keys, &["owner"]);
            assert_eq!(changes.len(), 2, "{changes:?}");
        }
        other => panic!("{other:?}"),
    }
    // Everything else (tags not read) is unchanged.
    assert_eq!(
        plan1.steps.iter().filter(|s| s.action.is_ready()).count(),
        1,
        "{:#?}",
        plan1.steps
    );

    o.tags.insert(
        camp,
        vec![crate::spec::model::Tag {
            key: "team".into(),
            value: "recs".into(),
        }],
    );
    let plan2 = plan(&spec, &o, &data(), &run());
    assert_eq!(step(&plan2, Kind::Campaign, "camp-a").action, Action::Adopt);
}

#[test]
fn a_solution_being_retagged_does_not_hold_up_its_version() {
    let spec = spec();
    let mut o = converged(&spec);
    o.tags.insert(format!("{P}solution/sol-a"), Vec::new());
    let plan = plan(&spec, &o, &data(), &run());
    assert!(matches!(
        &step(&plan, Kind::Solution, "sol-a").action,
        Action::Update {
            request: Request::TagResource { .. },
            ..
        }
    ));
    assert_eq!(step(&plan, Kind::SolutionVersion, "sol-a").action, Action::Adopt);
    assert_eq!(step(&plan, Kind::Campaign, "camp-a").action, Action::Adopt);
}
