//! One conformance suite for every [`ObjectStore`] backend (local directory, s3s-fs, moto), plus
//! the failure modes users meet: races on conditional creates, wrong credentials, an unreachable
//! endpoint, a missing bucket, an unusable local root.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tests::process::free_port;
use tests::servers::{MotoServer, S3sFs};
use wasmline::{ErrorKind, Key, LocalStore, ObjectMeta, ObjectStore, S3Config, S3Store};

const MIB: u64 = 1024 * 1024;

fn key(k: &str) -> Key {
    Key::new(k).unwrap()
}

/// `len` bytes that differ from position to position (so a misplaced part shows).
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect()
}

/// A config for a test server, with small list pages and parts so that paging and multipart
/// uploads happen on small data, and a prefix so that key mapping is exercised.
fn s3_config(endpoint: &str, bucket: &str, access_key: &str, secret_key: &str) -> S3Config {
    S3Config {
        prefix: "suite/root".to_owned(),
        endpoint: Some(endpoint.to_owned()),
        force_path_style: true,
        list_page_size: 7,
        multipart_threshold: 10 * MIB,
        part_size: 5 * MIB,
        ..S3Config::new(bucket, access_key, secret_key)
    }
}

async fn s3s_store(server: &S3sFs) -> S3Store {
    let config = s3_config(&server.endpoint, &server.bucket, &server.access_key, &server.secret_key);
    S3Store::connect(config).await.unwrap()
}

async fn moto_store(server: &MotoServer) -> S3Store {
    let config = s3_config(&server.endpoint, &server.bucket, &server.access_key, &server.secret_key);
    let store = S3Store::connect(config).await.unwrap();
    store.ensure_bucket().await.unwrap();
    store
}

fn keys(metas: &[ObjectMeta]) -> Vec<&str> {
    metas.iter().map(|m| m.key.as_str()).collect()
}

/// What every backend must do. Expects an empty store.
async fn storage_test_suite(store: &dyn ObjectStore) {
    let scratch = tempfile::tempdir().unwrap();
    let what = store.describe();

    // put / get / head round trip.
    let k = key("round/trip.json");
    store.put(&k, Bytes::from_static(b"{\"a\":1}")).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap(), Bytes::from_static(b"{\"a\":1}"), "{what}");
    assert_eq!(
        store.head(&k).await.unwrap(),
        ObjectMeta {
            key: k.clone(),
            size: 7
        },
        "{what}"
    );
    assert!(store.exists(&k).await.unwrap(), "{what}");

    // An empty object is an object.
    let empty = key("round/empty");
    store.put(&empty, Bytes::new()).await.unwrap();
    assert_eq!(store.get(&empty).await.unwrap(), Bytes::new(), "{what}");
    assert_eq!(store.head(&empty).await.unwrap().size, 0, "{what}");

    // Overwrite replaces the whole body, longer or shorter.
    store
        .put(&k, Bytes::from_static(b"a much longer second body"))
        .await
        .unwrap();
    assert_eq!(
        store.get(&k).await.unwrap(),
        Bytes::from_static(b"a much longer second body")
    );
    store.put(&k, Bytes::from_static(b"short")).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap(), Bytes::from_static(b"short"), "{what}");
    assert_eq!(store.head(&k).await.unwrap().size, 5, "{what}");

    // Missing objects are NotFound, and the message names the key.
    let missing = key("round/missing.json");
    for err in [
        store.get(&missing).await.unwrap_err(),
        store.head(&missing).await.unwrap_err(),
        store
            .get_to_file(&missing, &scratch.path().join("never"))
            .await
            .unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::NotFound, "{what}: {err}");
        assert!(err.to_string().contains("round/missing.json"), "{what}: {err}");
    }
    assert!(!store.exists(&missing).await.unwrap(), "{what}");
    assert!(
        !scratch.path().join("never").exists(),
        "{what}: a failed get_to_file left a file"
    );

    // list: a plain string prefix, sorted, with sizes, across many pages (7 keys a page on S3).
    let mut expected = Vec::new();
    for i in (0..30).rev() {
        let name = format!("list/a/{i:02}");
        store.put(&key(&name), Bytes::from(vec![b'x'; i])).await.unwrap();
        expected.push(ObjectMeta {
            key: key(&name),
            size: i as u64,
        });
    }
    expected.sort_by(|a, b| a.key.cmp(&b.key));
    for name in ["list/b/1", "list/ab", "lister/x"] {
        store.put(&key(name), Bytes::from_static(b"other")).await.unwrap();
    }
    assert_eq!(store.list("list/a/").await.unwrap(), expected, "{what}");
    let list_a = store.list("list/a").await.unwrap();
    assert_eq!(list_a.len(), 31, "{what}: {:?}", keys(&list_a));
    assert_eq!(list_a[0].key.as_str(), "list/a/00", "{what}");
    assert_eq!(list_a[30].key.as_str(), "list/ab", "{what}");
    assert_eq!(keys(&store.list("list/b").await.unwrap()), ["list/b/1"], "{what}");
    assert_eq!(store.list("list/").await.unwrap().len(), 32, "{what}");
    assert_eq!(store.list("list").await.unwrap().len(), 33, "{what}");
    assert_eq!(store.list("nothing/here/").await.unwrap(), vec![], "{what}");
    let all = store.list("").await.unwrap();
    assert_eq!(all.len(), 35, "{what}: {:?}", keys(&all));
    assert!(
        all.windows(2).all(|w| w[0].key < w[1].key),
        "{what}: list is not sorted"
    );

    // delete, and deleting what is absent is fine.
    store.delete(&key("list/b/1")).await.unwrap();
    assert_eq!(
        store.get(&key("list/b/1")).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(store.list("list/b").await.unwrap(), vec![], "{what}");
    store.delete(&key("list/b/1")).await.unwrap();
    store.delete(&key("never/was/there")).await.unwrap();

    // put_file below and above the multipart threshold, get_to_file back byte for byte.
    let small = scratch.path().join("small.bin");
    std::fs::write(&small, pattern(1000, 1)).unwrap();
    store.put_file(&key("files/small.bin"), &small).await.unwrap();
    assert_eq!(
        store.get(&key("files/small.bin")).await.unwrap(),
        pattern(1000, 1),
        "{what}"
    );

    let large_len = 12 * MIB as usize + 12345;
    let large = scratch.path().join("large.bin");
    std::fs::write(&large, pattern(large_len, 2)).unwrap();
    let large_key = key("files/large.bin");
    store.put_file(&large_key, &large).await.unwrap();
    assert_eq!(store.head(&large_key).await.unwrap().size, large_len as u64, "{what}");
    let back = scratch.path().join("back.bin");
    std::fs::write(&back, b"stale content that must be truncated away").unwrap();
    let written = store.get_to_file(&large_key, &back).await.unwrap();
    assert_eq!(written, large_len as u64, "{what}");
    assert!(
        std::fs::read(&back).unwrap() == pattern(large_len, 2),
        "{what}: large object differs"
    );
    assert!(
        store.get(&large_key).await.unwrap() == pattern(large_len, 2),
        "{what}: large object differs through get"
    );
    // Replacing a large object with a small one.
    store.put_file(&large_key, &small).await.unwrap();
    assert_eq!(store.head(&large_key).await.unwrap().size, 1000, "{what}");

    // Conditional create: the first wins, the second is refused and changes nothing.
    let version = key("models/m/1/manifest.json");
    store.create_new(&version, Bytes::from_static(b"first")).await.unwrap();
    let err = store
        .create_new(&version, Bytes::from_static(b"second"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{what}: {err}");
    assert!(err.to_string().contains("models/m/1/manifest.json"), "{what}: {err}");
    assert_eq!(
        store.get(&version).await.unwrap(),
        Bytes::from_static(b"first"),
        "{what}"
    );
    // After a delete the key can be created again.
    store.delete(&version).await.unwrap();
    store.create_new(&version, Bytes::from_static(b"third")).await.unwrap();
    assert_eq!(
        store.get(&version).await.unwrap(),
        Bytes::from_static(b"third"),
        "{what}"
    );

    // Compare-and-swap: a replace naming the tag it read succeeds once; a second writer naming
    // the same (now stale) tag is refused and changes nothing; a replace of a missing object fails.
    let alias = key("models/m/aliases/production.json");
    store.put(&alias, Bytes::from_static(b"v1")).await.unwrap();
    let (body, read) = store.get_tagged(&alias).await.unwrap();
    assert_eq!(body, Bytes::from_static(b"v1"), "{what}");
    let (_, again) = store.get_tagged(&alias).await.unwrap();
    assert_eq!(read, again, "{what}: the same bytes have the same tag");
    store
        .put_if_match(&alias, Bytes::from_static(b"v2"), &read)
        .await
        .unwrap();
    let err = store
        .put_if_match(&alias, Bytes::from_static(b"v3"), &read)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{what}: {err}");
    assert!(err.to_string().contains("production.json"), "{what}: {err}");
    let (body, now) = store.get_tagged(&alias).await.unwrap();
    assert_eq!(body, Bytes::from_static(b"v2"), "{what}");
    assert_ne!(now, read, "{what}: new bytes, new tag");
    store
        .put_if_match(&alias, Bytes::from_static(b"v4"), &now)
        .await
        .unwrap();
    assert_eq!(store.get(&alias).await.unwrap(), Bytes::from_static(b"v4"), "{what}");
    store.delete(&alias).await.unwrap();
    let err = store
        .put_if_match(&alias, Bytes::from_static(b"v5"), &now)
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Conflict | ErrorKind::NotFound),
        "{what}: {err}"
    );
    assert!(
        !store.exists(&alias).await.unwrap(),
        "{what}: a failed replace creates nothing"
    );
    assert_eq!(store.list("models/m/aliases").await.unwrap(), vec![], "{what}");
}

/// `tasks` writers each add one to a counter with read, compare-and-swap, retry: no increment is
/// lost, and every writer's successful swap is a distinct step of the counter.
async fn race_put_if_match(store: Arc<dyn ObjectStore>, tasks: usize) {
    let k = key("race/counter.json");
    store.put(&k, Bytes::from_static(b"0")).await.unwrap();
    let mut handles = Vec::new();
    for i in 0..tasks {
        let (store, k) = (store.clone(), k.clone());
        handles.push(tokio::spawn(async move {
            let mut conflicts = 0;
            loop {
                let (body, tag) = store.get_tagged(&k).await.unwrap();
                let n: u64 = std::str::from_utf8(&body).unwrap().parse().unwrap();
                match store.put_if_match(&k, Bytes::from((n + 1).to_string()), &tag).await {
                    Ok(()) => return (n + 1, conflicts),
                    Err(e) if e.kind() == ErrorKind::Conflict => conflicts += 1,
                    Err(e) => panic!("writer {i}: {e}"),
                }
            }
        }));
    }
    let mut steps = Vec::new();
    let mut conflicts = 0;
    for handle in handles {
        let (step, lost) = handle.await.unwrap();
        steps.push(step);
        conflicts += lost;
    }
    steps.sort_unstable();
    assert_eq!(steps, (1..=tasks as u64).collect::<Vec<_>>(), "{}", store.describe());
    assert_eq!(store.get(&k).await.unwrap(), Bytes::from(tasks.to_string()));
    assert!(
        conflicts > 0,
        "{}: the writers never raced, the test proves nothing",
        store.describe()
    );
}

/// `tasks` writers race `create_new` on one key: exactly one wins, and its body is what is stored.
async fn race_create_new(store: Arc<dyn ObjectStore>, tasks: usize) {
    let k = key("race/version.json");
    let mut handles = Vec::new();
    for i in 0..tasks {
        let (store, k) = (store.clone(), k.clone());
        handles.push(tokio::spawn(async move {
            (i, store.create_new(&k, Bytes::from(format!("writer {i}"))).await)
        }));
    }
    let mut winners = Vec::new();
    for handle in handles {
        let (i, result) = handle.await.unwrap();
        match result {
            Ok(()) => winners.push(i),
            Err(e) => assert_eq!(e.kind(), ErrorKind::AlreadyExists, "writer {i}: {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "{}: winners {winners:?}", store.describe());
    let stored = store.get(&k).await.unwrap();
    assert_eq!(stored, Bytes::from(format!("writer {}", winners[0])));
}

#[tokio::test]
async fn local_store_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path().join("store")).unwrap();
    storage_test_suite(&store).await;
}

#[tokio::test]
async fn s3s_fs_conformance() {
    let server = S3sFs::start();
    let store = s3s_store(&server).await;
    // The bucket exists already; creating it again is fine.
    store.ensure_bucket().await.unwrap();
    storage_test_suite(&store).await;
    // Keys live below the prefix: s3s-fs keeps them as files in the bucket's directory.
    let on_disk = server.data_dir.join(&server.bucket).join("suite/root/round/trip.json");
    assert_eq!(std::fs::read(&on_disk).unwrap(), b"short");
    // A file above the threshold goes up in parts: s3s-fs records the multipart ETag
    // (`md5-of-part-md5s-PARTS`) in an `.internal.json` file beside the buckets.
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("parts.bin");
    std::fs::write(&file, pattern(11 * MIB as usize, 3)).unwrap();
    store.put_file(&key("files/parts.bin"), &file).await.unwrap();
    let etags: Vec<String> = std::fs::read_dir(&server.data_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".internal.json"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(
        etags.iter().any(|e| e.contains("-3\"")),
        "no 3-part upload among {etags:?}"
    );
}

#[tokio::test]
async fn moto_conformance() {
    let server = MotoServer::start();
    let store = moto_store(&server).await;
    store.ensure_bucket().await.unwrap();
    storage_test_suite(&store).await;
    // A store without the prefix sees the suite's keys below it.
    let config = S3Config {
        prefix: String::new(),
        ..s3_config(&server.endpoint, &server.bucket, &server.access_key, &server.secret_key)
    };
    let root = S3Store::connect(config).await.unwrap();
    let head = root.head(&key("suite/root/round/trip.json")).await.unwrap();
    assert_eq!(head.size, 5);
}

#[tokio::test]
async fn local_store_removes_temporary_files_a_dead_writer_left_an_hour_ago() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    drop(LocalStore::open(&root).unwrap());
    let tmp = root.join(".tmp");
    let old = tmp.join("left-by-a-dead-writer");
    let fresh = tmp.join("being-written-now");
    for file in [&old, &fresh] {
        std::fs::write(file, b"half an object").unwrap();
    }
    let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();

    let store = LocalStore::open(&root).unwrap();
    assert!(!old.exists(), "a temporary file two hours old is removed at open");
    assert!(fresh.exists(), "one another writer may still be writing stays");
    // Writes still land whole and leave nothing of their own in .tmp.
    let key = Key::new("datasets/a/1.json").unwrap();
    store.put(&key, Bytes::from_static(b"{}")).await.unwrap();
    store
        .create_new(&Key::new("models/m/1/x").unwrap(), Bytes::from_static(b"x"))
        .await
        .unwrap();
    assert_eq!(&store.get(&key).await.unwrap()[..], b"{}");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, ["being-written-now"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_store_concurrent_creates_have_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    race_create_new(Arc::new(store), 16).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moto_concurrent_creates_have_one_winner() {
    let server = MotoServer::start();
    let store = moto_store(&server).await;
    race_create_new(Arc::new(store), 16).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_store_compare_and_swap_loses_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    race_put_if_match(Arc::new(store), 32).await;
}

/// Two stores (as two processes would open them) on one directory: the lock is the file's, not
/// the process's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_stores_on_one_directory_share_the_compare_and_swap() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        LocalStore::open(dir.path()).unwrap(),
        LocalStore::open(dir.path()).unwrap(),
    );
    let k = key("models/m/aliases/production.json");
    a.put(&k, Bytes::from_static(b"v1")).await.unwrap();
    let (_, tag) = a.get_tagged(&k).await.unwrap();
    b.put_if_match(&k, Bytes::from_static(b"from b"), &tag).await.unwrap();
    let err = a
        .put_if_match(&k, Bytes::from_static(b"from a"), &tag)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert_eq!(a.get(&k).await.unwrap(), Bytes::from_static(b"from b"));
    assert!(
        a.list("")
            .await
            .unwrap()
            .iter()
            .all(|m| !m.key.as_str().starts_with(".locks")),
        "lock files are not objects"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moto_compare_and_swap_loses_no_update() {
    let server = MotoServer::start();
    let store = moto_store(&server).await;
    race_put_if_match(Arc::new(store), 32).await;
}

#[tokio::test]
async fn wrong_secret_is_unauthorized() {
    let server = S3sFs::start();
    let config = s3_config(&server.endpoint, &server.bucket, &server.access_key, "not-the-secret");
    let store = S3Store::connect(config).await.unwrap();
    let k = key("a/b.json");
    let scratch = tempfile::tempdir().unwrap();
    let errors = [
        store.put(&k, Bytes::from_static(b"x")).await.unwrap_err(),
        store.get(&k).await.unwrap_err(),
        store.head(&k).await.unwrap_err(),
        store.list("").await.unwrap_err(),
        store.delete(&k).await.unwrap_err(),
        store.create_new(&k, Bytes::from_static(b"x")).await.unwrap_err(),
        store.get_to_file(&k, &scratch.path().join("out")).await.unwrap_err(),
    ];
    for err in errors {
        assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
        let message = err.to_string();
        assert!(message.contains("credentials"), "{message}");
        assert!(message.contains("AWS_SECRET_ACCESS_KEY"), "{message}");
        assert!(message.contains(&server.endpoint), "{message}");
    }
    // The body-carrying request names S3's own reason.
    let err = store.put(&k, Bytes::from_static(b"x")).await.unwrap_err();
    assert!(err.to_string().contains("SignatureDoesNotMatch"), "{err}");
    // Nothing was written.
    assert!(!server.data_dir.join(&server.bucket).join("suite").exists());
}

#[tokio::test]
async fn unreachable_endpoint_is_unavailable() {
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let k = key("a");
    // With the default retries: refused connections are retried a few times, with backoff,
    // not for the whole operation timeout.
    let store = S3Store::connect(s3_config(&endpoint, "bucket", "key", "secret"))
        .await
        .unwrap();
    let start = Instant::now();
    let err = store.get(&k).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let message = err.to_string();
    assert!(message.contains(&format!("cannot reach S3 at {endpoint}")), "{message}");
    // The cause is spelled out, without the SDK's debug dump.
    assert!(message.contains("Connection refused"), "{message}");
    assert!(!message.contains("DispatchFailure {"), "{message}");
    assert!(start.elapsed() < Duration::from_secs(30), "took {:?}", start.elapsed());
    // Every operation says the same; one attempt each keeps the test short.
    let config = S3Config {
        max_attempts: 1,
        ..s3_config(&endpoint, "bucket", "key", "secret")
    };
    let store = S3Store::connect(config).await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("f");
    std::fs::write(&file, b"body").unwrap();
    for err in [
        store.put(&k, Bytes::from_static(b"x")).await.unwrap_err(),
        store.put_file(&k, &file).await.unwrap_err(),
        store.create_new(&k, Bytes::from_static(b"x")).await.unwrap_err(),
        store.head(&k).await.unwrap_err(),
        store.list("").await.unwrap_err(),
        store.delete(&k).await.unwrap_err(),
        store.ensure_bucket().await.unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert!(err.to_string().contains(&endpoint), "{err}");
    }
}

/// Operations on a bucket that does not exist are NotFound and name the bucket. Writes are only
/// checked when `check_writes`: s3s-fs creates a missing bucket's directory on PutObject.
async fn assert_missing_bucket(store: &S3Store, check_writes: bool) {
    let k = key("a/b.json");
    let scratch = tempfile::tempdir().unwrap();
    let mut errors = vec![
        store.get(&k).await.unwrap_err(),
        store.get_to_file(&k, &scratch.path().join("out")).await.unwrap_err(),
        store.head(&k).await.unwrap_err(),
        store.list("").await.unwrap_err(),
        store.delete(&k).await.unwrap_err(),
    ];
    if check_writes {
        errors.push(store.put(&k, Bytes::from_static(b"x")).await.unwrap_err());
        errors.push(store.create_new(&k, Bytes::from_static(b"x")).await.unwrap_err());
    }
    for err in errors {
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        assert!(err.to_string().contains("no-such-bucket"), "{err}");
    }
    let err = store.list("").await.unwrap_err();
    assert!(
        err.to_string().contains("bucket 'no-such-bucket' does not exist"),
        "{err}"
    );
    assert!(!scratch.path().join("out").exists());
}

#[tokio::test]
async fn missing_bucket_is_not_found_on_s3s_fs() {
    let server = S3sFs::start();
    let config = S3Config {
        bucket: "no-such-bucket".to_owned(),
        ..s3_config(&server.endpoint, &server.bucket, &server.access_key, &server.secret_key)
    };
    let store = S3Store::connect(config).await.unwrap();
    assert_missing_bucket(&store, false).await;
    // s3s-fs's quirk: a put makes the bucket (real S3 and moto answer NoSuchBucket).
    store.put(&key("a/b.json"), Bytes::from_static(b"x")).await.unwrap();
    assert!(server.data_dir.join("no-such-bucket").is_dir());
}

#[tokio::test]
async fn missing_bucket_is_not_found_on_moto() {
    let server = MotoServer::start();
    let config = S3Config {
        bucket: "no-such-bucket".to_owned(),
        ..s3_config(&server.endpoint, &server.bucket, &server.access_key, &server.secret_key)
    };
    let store = S3Store::connect(config).await.unwrap();
    assert_missing_bucket(&store, true).await;
    // ensure_bucket makes it usable.
    store.ensure_bucket().await.unwrap();
    let k = key("a/b.json");
    store.put(&k, Bytes::from_static(b"x")).await.unwrap();
    assert_eq!(store.get(&k).await.unwrap(), Bytes::from_static(b"x"));
}

#[tokio::test]
async fn local_store_below_a_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"not a directory").unwrap();
    for root in [file.clone(), file.join("store")] {
        let err = LocalStore::open(&root).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        let message = err.to_string();
        assert!(message.contains("not a writable directory"), "{message}");
        assert!(message.contains(&*root.to_string_lossy()), "{message}");
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"not a directory");
    assert!(file.is_file());
}
