//! One conformance suite for every object store: in memory, a directory, and S3 (moto).

mod support;

use bytes::Bytes;
use chrono::{Duration, Utc};
use personalize_ops::objects::{DirStore, MemoryStore, ObjectError, ObjectStore, ObjectUrl, S3Store};

const KEYS: [&str; 7] = [
    "top.json",
    "train/a.csv",
    "train/b.csv",
    "train/g1/c.csv",
    "train/g1/d/e.csv",
    "trainer/x.csv",
    "folder/my file+ü.csv",
];

fn keys(listed: &[personalize_ops::objects::ObjectMeta]) -> Vec<&str> {
    listed.iter().map(|m| m.url.key.as_str()).collect()
}

/// The same assertions for every store; `bucket` must exist and be empty.
async fn conformance(store: &dyn ObjectStore, bucket: &str) {
    let url = |key: &str| ObjectUrl::new(bucket, key);
    let before = Utc::now() - Duration::seconds(5);

    // Missing objects.
    assert_eq!(store.head(&url("train/a.csv")).await.expect("head missing"), None);
    assert!(matches!(
        store.get(&url("train/a.csv"), 100).await,
        Err(ObjectError::NotFound { .. })
    ));
    assert!(store.list(&url(""), true).await.expect("list empty").is_empty());

    for (i, key) in KEYS.iter().enumerate() {
        let body = format!("{key}:{}", "x".repeat(i));
        store.put(&url(key), Bytes::from(body)).await.expect("put");
    }

    // Round trip, metadata and the size limit.
    let body = store.get(&url("train/b.csv"), 1000).await.expect("get");
    assert_eq!(&body[..], b"train/b.csv:xx");
    let head = store
        .head(&url("train/b.csv"))
        .await
        .expect("head")
        .expect("exists");
    assert_eq!(head.size, 14);
    assert_eq!(head.url, url("train/b.csv"));
    assert!(
        head.last_modified >= before && head.last_modified <= Utc::now() + Duration::seconds(5),
        "{head:?}"
    );
    assert_eq!(
        store
            .get(&url("train/b.csv"), 14)
            .await
            .expect("exactly the limit")
            .len(),
        14
    );
    match store.get(&url("train/b.csv"), 13).await {
        Err(ObjectError::TooLarge { size, limit, url: u }) => {
            assert_eq!((size, limit), (14, 13));
            assert_eq!(u, url("train/b.csv"));
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(
        &store
            .get(&url("folder/my file+ü.csv"), 100)
            .await
            .expect("odd key")[..],
        "folder/my file+ü.csv:xxxxxx".as_bytes()
    );

    // Replace, and an empty object.
    store
        .put(&url("train/a.csv"), Bytes::from_static(b"new"))
        .await
        .expect("replace");
    assert_eq!(
        &store.get(&url("train/a.csv"), 10).await.expect("get")[..],
        b"new"
    );
    store
        .put(&url("empty/_CHECK"), Bytes::new())
        .await
        .expect("empty");
    assert_eq!(
        store.get(&url("empty/_CHECK"), 0).await.expect("get empty").len(),
        0
    );
    assert_eq!(
        store
            .head(&url("empty/_CHECK"))
            .await
            .expect("head")
            .expect("exists")
            .size,
        0
    );

    // A folder is not an object.
    assert_eq!(store.head(&url("train")).await.expect("head folder"), None);
    assert_eq!(store.head(&url("train/g1")).await.expect("head folder"), None);

    // Listing: a literal key prefix, sorted, direct children unless recursive.
    let list =
        |key: &'static str, recursive| async move { store.list(&url(key), recursive).await.expect("list") };
    assert_eq!(keys(&list("train/", false).await), ["train/a.csv", "train/b.csv"]);
    assert_eq!(
        keys(&list("train/", true).await),
        ["train/a.csv", "train/b.csv", "train/g1/c.csv", "train/g1/d/e.csv"]
    );
    assert!(keys(&list("train", false).await).is_empty());
    assert_eq!(
        keys(&list("train", true).await),
        [
            "train/a.csv",
            "train/b.csv",
            "train/g1/c.csv",
            "train/g1/d/e.csv",
            "trainer/x.csv"
        ]
    );
    assert_eq!(
        keys(&list("train/g", true).await),
        ["train/g1/c.csv", "train/g1/d/e.csv"]
    );
    assert!(keys(&list("train/g", false).await).is_empty());
    assert_eq!(keys(&list("train/a", false).await), ["train/a.csv"]);
    assert_eq!(keys(&list("", false).await), ["top.json"]);
    assert_eq!(list("", true).await.len(), KEYS.len() + 1);
    assert!(list("nothing/", true).await.is_empty());
    let listed = list("train/", false).await;
    assert_eq!(listed[0].size, 3);
    assert_eq!(listed[1].size, 14);
    assert!(listed.iter().all(|m| m.url.bucket == bucket));
}

#[tokio::test]
async fn memory_store_conforms() {
    conformance(&MemoryStore::new(), "data").await;
}

#[tokio::test]
async fn dir_store_conforms() {
    let dir = tempfile::tempdir().expect("temp dir");
    conformance(&DirStore::new(dir.path().join("root"), "data"), "data").await;
    // Objects are plain files under the root.
    let file = dir.path().join("root/train/g1/d/e.csv");
    assert_eq!(
        std::fs::read_to_string(file).expect("a plain file"),
        "train/g1/d/e.csv:xxxx"
    );
}

#[tokio::test]
async fn s3_store_conforms_against_moto() {
    let moto = support::moto::Moto::start();
    let s3 = moto.s3_client().await;
    let bucket = moto.bucket(&s3, "conformance").await;
    // Pages of two keys, so every listing above follows continuation tokens.
    let store = S3Store::new(s3.clone()).with_page_size(2);
    conformance(&store, &bucket).await;

    // A missing bucket is an error that names it, with the service's own code.
    let err = store
        .get(&ObjectUrl::new("no-such-bucket-here", "k"), 10)
        .await
        .expect_err("missing bucket");
    let text = format!(
        "{err} / {}",
        std::error::Error::source(&err)
            .map(ToString::to_string)
            .unwrap_or_default()
    );
    assert!(
        text.contains("s3://no-such-bucket-here/k") && text.contains("NoSuchBucket"),
        "{text}"
    );
    let err = store
        .list(&ObjectUrl::new("no-such-bucket-here", ""), true)
        .await
        .expect_err("missing bucket");
    assert!(matches!(err, ObjectError::Backend { op: "list", .. }), "{err:?}");
}

/// The import path end to end over S3: the reference's CSV, found through a folder key without
/// its slash (as the reference sends it), checked against the sample schema.
#[tokio::test]
async fn an_import_reads_csv_from_s3() {
    let moto = support::moto::Moto::start();
    let s3 = moto.s3_client().await;
    let bucket = moto.bucket(&s3, "import").await;
    let store = S3Store::new(s3);
    let csv = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/data/interactions.csv"
    ))
    .expect("fixture");
    let url = ObjectUrl::new(&bucket, "train/g1/interactions/part1.csv");
    store.put(&url, Bytes::from(csv)).await.expect("upload");
    let schema = personalize_ops::spec::avro::parse_str(
        r#"{"type": "record", "name": "interactions", "fields": [
            {"name": "ITEM_ID", "type": "string"}, {"name": "USER_ID", "type": "string"},
            {"name": "TIMESTAMP", "type": "long"}, {"name": "EVENT_TYPE", "type": "string"},
            {"name": "EVENT_VALUE", "type": "float"}]}"#,
    )
    .expect("schema");
    let location = format!("s3://{bucket}/train/g1/interactions");
    let table = personalize_ops::emulator::engine::import::read_csv_dataset(&store, &location, &schema)
        .await
        .expect("import");
    assert_eq!(table.len(), 1000);
    let err = personalize_ops::emulator::engine::import::read_csv_dataset(
        &store,
        &format!("s3://{bucket}/train/none/"),
        &schema,
    )
    .await
    .expect_err("no data");
    assert_eq!(
        err.to_string(),
        format!("no CSV file found at s3://{bucket}/train/none/")
    );
}
