//! Reader tests over small fixture directories: every layout, the feature conventions, the
//! error positions, skip-bad-lines, and properties (aggregation against a naive reference,
//! no panic on arbitrary bytes).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use proptest::prelude::*;

use super::*;

fn write(dir: &Path, name: &str, content: impl AsRef<[u8]>) {
    fs::write(dir.join(name), content).unwrap();
}

fn load(dir: &Path) -> Result<Dataset, DataError> {
    load_dir(dir, &LoadOptions::default())
}

fn load_skipping(dir: &Path) -> Result<Dataset, DataError> {
    load_dir(
        dir,
        &LoadOptions {
            skip_bad_lines: true,
        },
    )
}

fn dir_with(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        write(dir.path(), name, content);
    }
    dir
}

/// (user id, item id, ts, weight, count) of every interaction, in dataset order.
fn rows(d: &Dataset) -> Vec<(String, String, i64, f32, u32)> {
    d.interactions
        .iter()
        .map(|x| {
            let u = d.user_ids[x.user as usize].clone();
            (
                u,
                d.item_ids[x.item as usize].clone(),
                x.ts,
                x.weight,
                x.count,
            )
        })
        .collect()
}

fn names(f: &EntityFeatures, e: usize) -> Vec<&str> {
    f.categorical[e]
        .iter()
        .map(|&id| f.cat_vocab[id as usize].as_str())
        .collect()
}

fn tokens(f: &EntityFeatures, e: usize) -> Vec<&str> {
    f.text[e]
        .iter()
        .map(|&id| f.token_vocab[id as usize].as_str())
        .collect()
}

fn numeric(f: &EntityFeatures, e: usize, name: &str) -> f32 {
    let col = f.numeric_names.iter().position(|n| n == name).unwrap();
    f.numeric[e * f.numeric_names.len() + col]
}

#[test]
fn generic_layout_reads_interactions_and_features() {
    let dir = dir_with(&[
        (
            "interactions.csv",
            b"item_id,extra,user_id,timestamp,weight\n\
              i1,x,u1,100,1\ni2,y,u1,200,\ni1,z,u2,150,2.5\ni1,w,u1,300,3\n",
        ),
        (
            "items.csv",
            b"item_id,title,genre,price,tags,year,notes\n\
              i1,\"Toy Story, The\",Animation|Comedy,9.99,kids,1995,\n\
              i2,Heat,Action,,adult| crime,1995,\n\
              i3,Cold Item,Drama,5,,2001,\n",
        ),
        ("users.csv", b"user_id,age,gender\nu2,34,F\nu9,51,M\n"),
    ]);
    let d = load(dir.path()).unwrap();
    assert_eq!(d.user_ids, ["u1", "u2", "u9"]);
    assert_eq!(d.item_ids, ["i1", "i2", "i3"]);
    assert_eq!(d.user_index["u9"], 2);
    assert_eq!(
        rows(&d),
        [
            ("u1".into(), "i2".into(), 200, 1.0, 1),
            ("u1".into(), "i1".into(), 300, 4.0, 2),
            ("u2".into(), "i1".into(), 150, 2.5, 1),
        ]
    );
    assert_eq!(d.category_vocab, ["Animation", "Comedy", "Action", "Drama"]);
    assert_eq!(d.item_categories, [vec![0, 1], vec![2], vec![3]]);
    assert_eq!(d.item_titles, ["Toy Story, The", "Heat", "Cold Item"]);
    let f = &d.item_features;
    assert_eq!(
        f.numeric_names,
        ["price", "year"],
        "`notes` is empty everywhere: dropped"
    );
    assert_eq!(
        names(f, 0),
        ["genre=Animation", "genre=Comedy", "tags=kids"]
    );
    assert_eq!(names(f, 1), ["genre=Action", "tags=adult", "tags=crime"]);
    assert_eq!(tokens(f, 0), ["toy", "story", "the"]);
    assert_eq!(numeric(f, 0, "price"), 9.99);
    assert!(numeric(f, 1, "price").is_nan());
    assert_eq!(numeric(f, 2, "year"), 2001.0);
    let u = &d.user_features;
    assert!(!u.has_any(0), "u1 is only in interactions");
    assert_eq!(names(u, 1), ["gender=F"]);
    assert_eq!(numeric(u, 2, "age"), 51.0);
    assert!(d.skipped_lines.is_empty());
}

#[test]
fn header_is_found_by_name_with_bom_and_case_and_weight_defaults_to_one() {
    let dir = dir_with(&[(
        "interactions.csv",
        "\u{feff}Timestamp, ITEM_ID ,User_Id\n7,a,u\n8.9,a,u\n".as_bytes(),
    )]);
    let d = load(dir.path()).unwrap();
    assert_eq!(rows(&d), [("u".into(), "a".into(), 8, 2.0, 2)]);
}

#[test]
fn numeric_looking_category_column_stays_categorical() {
    let dir = dir_with(&[
        ("interactions.csv", b"user_id,item_id,timestamp\nu,i1,1\n"),
        ("items.csv", b"item_id,category,rank\ni1,3,1\ni2,4|5,2\n"),
    ]);
    let d = load(dir.path()).unwrap();
    assert_eq!(d.category_vocab, ["3", "4", "5"]);
    assert_eq!(d.item_features.numeric_names, ["rank"]);
    assert_eq!(names(&d.item_features, 1), ["category=4", "category=5"]);
}

/// Loads a one-file directory holding `interactions` and returns the error.
fn error_of(interactions: &[u8]) -> DataError {
    let dir = dir_with(&[("interactions.csv", interactions)]);
    load(dir.path()).unwrap_err()
}

#[test]
fn errors_name_file_line_and_column() {
    let e = error_of(b"user_id,item_id,timestamp\nu,i,1\nu,i,abc\n");
    assert!(
        matches!(&e, DataError::InvalidTimestamp { line: 3, column, value, .. } if column == "timestamp" && value == "abc"),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("interactions.csv:3: column `timestamp`"),
        "{e}"
    );

    let e = error_of(b"user_id,item_id,timestamp\n ,i,1\n");
    assert!(
        matches!(&e, DataError::EmptyId { line: 2, column, .. } if column == "user_id"),
        "{e:?}"
    );

    let e = error_of(b"user_id,item_id,timestamp\nu,i,1\nu,i\n");
    assert!(
        matches!(
            e,
            DataError::FieldCount {
                line: 3,
                expected: 3,
                found: 2,
                ..
            }
        ),
        "{e:?}"
    );

    let e = error_of(b"user_id,item_id,timestamp\nu\xff,i,1\n");
    assert!(
        matches!(&e, DataError::InvalidUtf8 { line: 2, column, .. } if column == "user_id"),
        "{e:?}"
    );

    let e = error_of(b"user_id,item_id,timestamp,weight\nu,i,1,-2\n");
    assert!(
        matches!(&e, DataError::InvalidNumber { line: 2, column, .. } if column == "weight"),
        "{e:?}"
    );

    let e = error_of(b"user_id,item_id,timestamp,weight\nu,i,1,NaN\n");
    assert!(
        matches!(e, DataError::InvalidNumber { line: 2, .. }),
        "{e:?}"
    );

    // A quoted field spanning lines: the next record's line is still the file's line.
    let e = error_of(b"user_id,item_id,timestamp,note\nu,i,1,\"a\nb\"\nu,i,x,n\n");
    assert!(
        matches!(e, DataError::InvalidTimestamp { line: 4, .. }),
        "{e:?}"
    );

    let e = error_of(b"user_id,item_id\nu,i\n");
    assert!(
        matches!(&e, DataError::MissingColumn { column, .. } if column == "timestamp"),
        "{e:?}"
    );

    let e = error_of(b"user_id,item_id,timestamp,USER_ID\n");
    assert!(matches!(e, DataError::DuplicateColumn { .. }), "{e:?}");

    let e = error_of(b"");
    assert!(matches!(e, DataError::MissingColumn { .. }), "{e:?}");

    let long = format!("user_id,item_id,timestamp\nu,i,{}\n", "9".repeat(500));
    match error_of(long.as_bytes()) {
        DataError::InvalidTimestamp { value, .. } => assert!(value.chars().count() <= 65),
        e => panic!("{e:?}"),
    }
}

#[test]
fn feature_file_errors_are_reported_too() {
    let dir = dir_with(&[
        ("interactions.csv", b"user_id,item_id,timestamp\nu,i,1\n"),
        ("items.csv", b"id,title\ni,x\n"),
    ]);
    let e = load(dir.path()).unwrap_err();
    assert!(
        matches!(&e, DataError::MissingColumn { column, .. } if column == "item_id"),
        "{e:?}"
    );
    write(dir.path(), "items.csv", b"item_id,title\ni,x\n,y\n");
    let e = load(dir.path()).unwrap_err();
    assert!(matches!(e, DataError::EmptyId { line: 3, .. }), "{e:?}");
}

#[test]
fn bad_lines_are_skipped_and_counted_per_file() {
    let dir = dir_with(&[
        (
            "interactions.csv",
            b"user_id,item_id,timestamp,weight\nu1,i1,1,1\nu1,i2,x,1\n,i3,1,1\nu2,i1\n\
              u2\xff,i1,1,1\nu3,i1,1,-1\nu2,i2,5,2\n",
        ),
        (
            "items.csv",
            b"item_id,brand\ni1,acme\ni9,bad,extra\ni4,zed\n",
        ),
        ("users.csv", b"user_id,age\nu1,30\nu5,40\n"),
    ]);
    assert!(matches!(
        load(dir.path()),
        Err(DataError::InvalidTimestamp { line: 3, .. })
    ));
    let d = load_skipping(dir.path()).unwrap();
    assert_eq!(
        rows(&d),
        [
            ("u1".into(), "i1".into(), 1, 1.0, 1),
            ("u2".into(), "i2".into(), 5, 2.0, 1)
        ]
    );
    assert_eq!(
        d.skipped_lines,
        [
            ("interactions.csv".to_string(), 5),
            ("items.csv".to_string(), 1)
        ]
    );
    assert_eq!(
        d.item_ids,
        ["i1", "i2", "i4"],
        "the skipped i9 line adds nothing"
    );
    assert_eq!(d.user_ids, ["u1", "u2", "u5"]);

    // Header problems are not line problems.
    write(dir.path(), "interactions.csv", b"user,item_id,timestamp\n");
    assert!(matches!(
        load_skipping(dir.path()),
        Err(DataError::MissingColumn { .. })
    ));
}

#[test]
fn missing_and_unknown_directories() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        load(dir.path()),
        Err(DataError::UnknownLayout { .. })
    ));
    let gone = dir.path().join("nope");
    assert!(matches!(load(&gone), Err(DataError::MissingFile { path }) if path == gone));
    assert_eq!(detect_layout(dir.path()), None);
}

fn flags(genres: &[usize]) -> String {
    (0..19)
        .map(|g| if genres.contains(&g) { "|1" } else { "|0" })
        .collect()
}

#[test]
fn movielens_100k() {
    let items = [
        format!(
            "10|Caf\u{e9} Society (1995)|01-Jan-1995||http://x{}\n",
            flags(&[1, 5])
        ),
        format!("20|Heat (1995)|||http://y{}\n", flags(&[0])),
    ]
    .concat();
    // Latin-1 on disk: é is the single byte 0xE9.
    let items: Vec<u8> = items.chars().map(|c| c as u32 as u8).collect();
    let dir = dir_with(&[
        (
            "u.data",
            b"1\t10\t5\t881250949\n2\t10\t3\t881250950\n\n1\t20\t4\t881250951\n",
        ),
        ("u.item", &items),
        (
            "u.user",
            b"1|24|M|technician|85711\n2|53|F|other|94043\n3|17|M|student|1\n",
        ),
    ]);
    assert_eq!(detect_layout(dir.path()), Some(Layout::MovieLens100K));
    let d = load(dir.path()).unwrap();
    assert_eq!(
        rows(&d),
        [
            ("1".into(), "10".into(), 881250949, 5.0, 1),
            ("1".into(), "20".into(), 881250951, 4.0, 1),
            ("2".into(), "10".into(), 881250950, 3.0, 1),
        ]
    );
    assert_eq!(d.item_titles, ["Caf\u{e9} Society (1995)", "Heat (1995)"]);
    assert_eq!(
        d.category_vocab,
        ["Action", "Comedy"],
        "the `unknown` flag is no category"
    );
    assert_eq!(d.item_categories, [vec![0, 1], vec![]]);
    assert_eq!(
        tokens(&d.item_features, 0),
        ["caf\u{e9}", "society", "1995"]
    );
    assert_eq!(numeric(&d.item_features, 0, "year"), 1995.0);
    assert_eq!(
        numeric(&d.item_features, 1, "year"),
        1995.0,
        "year from the title"
    );
    assert_eq!(
        names(&d.user_features, 0),
        ["age=18-24", "gender=M", "occupation=technician"]
    );
    assert_eq!(
        names(&d.user_features, 2),
        ["age=under 18", "gender=M", "occupation=student"]
    );
    assert_eq!(d.n_users(), 3, "user 3 has no rating but is kept");
}

#[test]
fn movielens_1m() {
    let dir = dir_with(&[
        ("ratings.dat", b"1::1193::5::978300760\r\n1::661::3::978302109\r\n"),
        ("movies.dat", b"1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::Le Ch\xe2teau (1996)::Animation|Children's\n"),
        ("users.dat", b"1::F::1::10::48067\n2::M::56::16::70072\n"),
    ]);
    assert_eq!(detect_layout(dir.path()), Some(Layout::MovieLens1M));
    let d = load(dir.path()).unwrap();
    assert_eq!(rows(&d)[0], ("1".into(), "1193".into(), 978300760, 5.0, 1));
    assert_eq!(d.item_titles[1], "Le Ch\u{e2}teau (1996)");
    assert_eq!(d.category_vocab, ["Drama", "Animation", "Children's"]);
    assert_eq!(
        names(&d.user_features, 0),
        ["age=under 18", "gender=F", "occupation=K-12 student"]
    );
    assert_eq!(
        names(&d.user_features, 1),
        ["age=56+", "gender=M", "occupation=self-employed"]
    );

    write(dir.path(), "ratings.dat", b"1::1193::5\n");
    assert!(matches!(
        load(dir.path()),
        Err(DataError::FieldCount {
            line: 1,
            expected: 4,
            found: 3,
            ..
        })
    ));
}

#[test]
fn movielens_latest() {
    let dir = dir_with(&[
        (
            "ratings.csv",
            b"userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,3.5,964981247\n",
        ),
        (
            "movies.csv",
            b"movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n\
              3,\"American President, The (1995)\",(no genres listed)\n5,Unrated (2001),Drama\n",
        ),
    ]);
    assert_eq!(detect_layout(dir.path()), Some(Layout::MovieLensLatest));
    let d = load(dir.path()).unwrap();
    assert_eq!(rows(&d)[0], ("1".into(), "3".into(), 964981247, 3.5, 1));
    assert_eq!(
        d.item_titles,
        [
            "Toy Story (1995)",
            "American President, The (1995)",
            "Unrated (2001)"
        ]
    );
    assert_eq!(d.item_categories, [vec![0, 1], vec![], vec![2]]);
    assert_eq!(d.n_items(), 3);
}

/// Writes random rows, loads them and compares with a naive aggregation.
fn check_against_naive(rows_in: &[(u8, u8, i64, u8)]) -> Result<(), TestCaseError> {
    let mut csv = String::from("user_id,item_id,timestamp,weight\n");
    let mut naive: BTreeMap<(String, String), (f64, i64, u32)> = BTreeMap::new();
    for &(u, i, ts, w) in rows_in {
        let (u, i) = (format!("u{u}"), format!("i{i}"));
        csv.push_str(&format!("{u},{i},{ts},{}\n", f32::from(w) / 2.0));
        let e = naive.entry((u, i)).or_insert((0.0, i64::MIN, 0));
        e.0 += f64::from(w) / 2.0;
        e.1 = e.1.max(ts);
        e.2 += 1;
    }
    let dir = dir_with(&[("interactions.csv", csv.as_bytes())]);
    let d = load(dir.path()).unwrap();
    let mut got: Vec<_> = rows(&d);
    prop_assert!(
        d.interactions
            .windows(2)
            .all(|w| (w[0].user, w[0].ts, w[0].item) < (w[1].user, w[1].ts, w[1].item))
    );
    got.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let want: Vec<_> = naive
        .into_iter()
        .map(|((u, i), (w, ts, n))| (u, i, ts, w as f32, n))
        .collect();
    prop_assert_eq!(got, want);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn aggregation_matches_a_naive_reference(
        rows_in in prop::collection::vec((0u8..6, 0u8..6, -5i64..50, 0u8..10), 0..60)
    ) {
        check_against_naive(&rows_in)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..400),
        header in any::<bool>(),
        skip in any::<bool>(),
    ) {
        let mut content = if header { b"user_id,item_id,timestamp,weight\n".to_vec() } else { Vec::new() };
        content.extend_from_slice(&bytes);
        let opts = LoadOptions { skip_bad_lines: skip };
        for (main, other) in [("interactions.csv", "items.csv"), ("u.data", "u.item"), ("ratings.dat", "movies.dat")] {
            let dir = dir_with(&[(main, &content)]);
            let _ = load_dir(dir.path(), &opts);
            // The same bytes as a feature file beside valid interactions.
            let valid: &[u8] = match main {
                "interactions.csv" => b"user_id,item_id,timestamp\nu,i,1\n",
                "u.data" => b"1\t2\t3\t4\n",
                _ => b"1::2::3::4\n",
            };
            let dir = dir_with(&[(main, valid), (other, &content)]);
            let _ = load_dir(dir.path(), &opts);
        }
    }

    #[test]
    fn arbitrary_text_rows_never_panic(
        lines in prop::collection::vec("[a-z0-9,|\" \\-.:\t]{0,30}", 0..20),
        skip in any::<bool>(),
    ) {
        let body = lines.join("\n");
        let interactions = format!("user_id,item_id,timestamp,weight\n{body}");
        let items = format!("item_id,title,category,price\n{body}");
        let dir = dir_with(&[("interactions.csv", interactions.as_bytes()), ("items.csv", items.as_bytes())]);
        let result = load_dir(dir.path(), &LoadOptions { skip_bad_lines: skip });
        if let Ok(d) = result {
            prop_assert_eq!(d.item_categories.len(), d.n_items());
            prop_assert_eq!(d.item_features.len(), d.n_items());
            prop_assert_eq!(d.user_features.len(), d.n_users());
            prop_assert!(d.interactions.iter().all(|x| (x.user as usize) < d.n_users() && (x.item as usize) < d.n_items()));
        }
    }
}
