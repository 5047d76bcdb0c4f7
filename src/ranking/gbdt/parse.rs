//! Parser for LightGBM's text model format, producing the flat layout of [`NativeModel`].
//!
//! The format (LightGBM `GBDT::SaveModelToString` / `Tree::ToString`): a header of `key=value`
//! lines (`num_class`, `max_feature_idx`, `feature_names`, `objective`, `tree_sizes`, …), then one
//! block per tree starting with `Tree=<i>` and holding per-node arrays, then `end of trees`
//! followed by feature importances and parameters, which scoring does not need. Everything
//! read from the text is bounds-checked here so that the scorer can walk trees without checks
//! that could fail.

use std::collections::HashMap;

use super::bitmask::BitmaskForest;
use super::{
    CATEGORICAL, FLAG_SHIFT, MAX_FEATURE_INDEX, NativeModel, Node, RankerError, SPECIAL_LEFT,
    TreeInfo, ZERO_SPECIAL,
};

/// `decision_type` bit: categorical split (LightGBM `kCategoricalMask`).
pub(super) const DT_CATEGORICAL: u8 = 1;
/// `decision_type` bit: missing values go left (LightGBM `kDefaultLeftMask`).
pub(super) const DT_DEFAULT_LEFT: u8 = 2;
/// LightGBM `MissingType` values, stored in `decision_type` bits 2–3.
pub(super) const MISSING_NONE: u8 = 0;
pub(super) const MISSING_ZERO: u8 = 1;
pub(super) const MISSING_NAN: u8 = 2;

const END_OF_TREES: &str = "end of trees";

/// One line of the model text: 1-based number, byte offset of its start, text without EOL.
#[derive(Clone, Copy)]
struct Line<'a> {
    no: usize,
    offset: usize,
    text: &'a str,
}

fn err(line: usize, reason: impl Into<String>) -> RankerError {
    RankerError::Parse {
        line,
        reason: reason.into(),
    }
}

/// The per-node arrays of one `Tree=` block, as written by LightGBM's `Tree::ToString`.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct RawTree {
    pub num_leaves: usize,
    pub num_cat: usize,
    pub split_feature: Vec<usize>,
    pub threshold: Vec<f64>,
    pub decision_type: Vec<u8>,
    pub left_child: Vec<i32>,
    pub right_child: Vec<i32>,
    pub leaf_value: Vec<f64>,
    pub cat_boundaries: Vec<usize>,
    pub cat_threshold: Vec<u32>,
    /// Training rows that reached each leaf / internal node (TreeSHAP's cover); empty when the
    /// model text omits them.
    pub leaf_count: Vec<f64>,
    pub internal_count: Vec<f64>,
}

/// Key/value lines of one section (header or tree block) with the line each came from.
struct Section<'a> {
    start_line: usize,
    values: HashMap<&'a str, (usize, &'a str)>,
}

impl<'a> Section<'a> {
    fn new(start_line: usize) -> Self {
        Section {
            start_line,
            values: HashMap::new(),
        }
    }

    fn insert(&mut self, line: Line<'a>) -> Result<(), RankerError> {
        let (key, value) = line.text.split_once('=').unwrap_or((line.text, ""));
        if self.values.insert(key, (line.no, value)).is_some() {
            return Err(err(line.no, format!("duplicate key `{key}`")));
        }
        Ok(())
    }

    fn get(&self, key: &str) -> Option<(usize, &'a str)> {
        self.values.get(key).copied()
    }

    fn required(&self, key: &str) -> Result<(usize, &'a str), RankerError> {
        self.get(key)
            .ok_or_else(|| err(self.start_line, format!("missing `{key}=`")))
    }

    fn scalar<T: std::str::FromStr>(&self, key: &str) -> Result<T, RankerError> {
        let (line, value) = self.required(key)?;
        value
            .trim()
            .parse()
            .map_err(|_| err(line, format!("`{key}`: cannot parse `{value}`")))
    }

    /// A space-separated array that must have exactly `len` elements; an absent key is accepted
    /// only when `len` is zero (LightGBM writes empty arrays for single-leaf trees).
    fn array<T: std::str::FromStr>(&self, key: &str, len: usize) -> Result<Vec<T>, RankerError> {
        let Some((line, value)) = self.get(key) else {
            return if len == 0 {
                Ok(Vec::new())
            } else {
                Err(err(self.start_line, format!("missing `{key}=`")))
            };
        };
        let mut out = Vec::with_capacity(len.min(1 << 20));
        for token in value.split_ascii_whitespace() {
            let v = token
                .parse()
                .map_err(|_| err(line, format!("`{key}`: cannot parse `{token}`")))?;
            out.push(v);
        }
        if out.len() != len {
            return Err(err(
                line,
                format!("`{key}` has {} values, expected {len}", out.len()),
            ));
        }
        Ok(out)
    }
}

fn split_lines(text: &str) -> impl Iterator<Item = Line<'_>> {
    let mut offset = 0;
    text.split_inclusive('\n').enumerate().map(move |(i, raw)| {
        let line = Line {
            no: i + 1,
            offset,
            text: raw.trim_end_matches(['\n', '\r']),
        };
        offset += raw.len();
        line
    })
}

pub(super) fn parse_model(text: &str) -> Result<NativeModel, RankerError> {
    let mut lines = split_lines(text).peekable();

    // Header: everything up to the first tree.
    let mut header = Section::new(1);
    while let Some(line) = lines.next_if(|l| !is_tree_start(l.text) && l.text != END_OF_TREES) {
        if !line.text.is_empty() {
            header.insert(line)?;
        }
    }
    let num_class: i64 = header.scalar("num_class")?;
    if num_class != 1 {
        return Err(err(
            header.required("num_class")?.0,
            format!("num_class={num_class}: only single-output models are supported"),
        ));
    }
    if header.get("num_tree_per_iteration").is_some() {
        let per_iter: i64 = header.scalar("num_tree_per_iteration")?;
        if per_iter != 1 {
            return Err(err(
                header.required("num_tree_per_iteration")?.0,
                format!("num_tree_per_iteration={per_iter}: only 1 is supported"),
            ));
        }
    }
    if let Some((line, _)) = header.get("average_output") {
        return Err(err(
            line,
            "average_output (random forest) models are not supported",
        ));
    }
    let max_feature_idx: usize = header.scalar("max_feature_idx")?;
    if max_feature_idx > MAX_FEATURE_INDEX {
        return Err(err(
            header.required("max_feature_idx")?.0,
            format!("max_feature_idx={max_feature_idx} exceeds {MAX_FEATURE_INDEX}"),
        ));
    }
    let num_features = max_feature_idx + 1;
    let (names_line, names) = header.required("feature_names")?;
    let feature_names: Vec<String> = names.split(' ').map(str::to_owned).collect();
    if feature_names.len() != num_features {
        return Err(err(
            names_line,
            format!(
                "{} feature names for max_feature_idx={max_feature_idx}",
                feature_names.len()
            ),
        ));
    }
    let objective = header
        .get("objective")
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty());
    let tree_sizes: Option<Vec<usize>> = match header.get("tree_sizes") {
        Some((_, v)) => Some(header.array("tree_sizes", v.split_ascii_whitespace().count())?),
        None => None,
    };

    // Tree blocks.
    let mut model = NativeModel {
        nodes: Vec::new(),
        cover: Vec::new(),
        trees: Vec::new(),
        cat_bits: Vec::new(),
        bitmask: Box::default(),
        feature_names,
        objective,
    };
    let mut block_offsets = Vec::new();
    let mut end_offset = None;
    while let Some(line) = lines.next() {
        if line.text == END_OF_TREES {
            end_offset = Some(line.offset);
            break;
        }
        if line.text.is_empty() {
            continue;
        }
        let Some(index) = line.text.strip_prefix("Tree=") else {
            return Err(err(
                line.no,
                format!(
                    "expected `Tree=` or `{END_OF_TREES}`, found `{}`",
                    line.text
                ),
            ));
        };
        if index.trim().parse::<usize>().ok() != Some(model.trees.len()) {
            return Err(err(
                line.no,
                format!("expected Tree={}, found `{}`", model.trees.len(), line.text),
            ));
        }
        block_offsets.push(line.offset);
        let mut section = Section::new(line.no);
        while let Some(kv) = lines
            .next_if(|l| !l.text.is_empty() && !is_tree_start(l.text) && l.text != END_OF_TREES)
        {
            section.insert(kv)?;
        }
        let raw = raw_tree(&section)?;
        let tree = append_tree(&raw, line.no, num_features, &mut model)?;
        model.trees.push(tree);
    }
    let Some(end_offset) = end_offset else {
        return Err(err(
            text.lines().count().max(1),
            format!("missing `{END_OF_TREES}` marker (truncated model?)"),
        ));
    };

    // LightGBM seeks to each tree by `tree_sizes`; sizes that disagree with the text would send
    // it reading at wrong offsets, so they are checked even though this parser does not need them.
    if let Some(sizes) = tree_sizes {
        let (line, _) = header.required("tree_sizes")?;
        if sizes.len() != model.trees.len() {
            return Err(err(
                line,
                format!(
                    "tree_sizes lists {} trees, the model has {}",
                    sizes.len(),
                    model.trees.len()
                ),
            ));
        }
        let mut bounds = block_offsets.clone();
        bounds.push(end_offset);
        for (i, (pair, &size)) in bounds.windows(2).zip(&sizes).enumerate() {
            if pair[1] - pair[0] != size {
                return Err(err(
                    line,
                    format!(
                        "tree_sizes[{i}]={size} but Tree={i} spans {} bytes \
                         (edited file or converted line endings?)",
                        pair[1] - pair[0]
                    ),
                ));
            }
        }
    }
    let (forest, index) = BitmaskForest::build(&model.nodes, &model.trees);
    model.bitmask = Box::new(forest);
    for (tree, bitmask) in model.trees.iter_mut().zip(index) {
        tree.bitmask = bitmask;
    }
    Ok(model)
}

fn is_tree_start(text: &str) -> bool {
    text.starts_with("Tree=")
}

fn raw_tree(s: &Section<'_>) -> Result<RawTree, RankerError> {
    let num_leaves: usize = s.scalar("num_leaves")?;
    if num_leaves == 0 {
        return Err(err(s.required("num_leaves")?.0, "num_leaves=0"));
    }
    if let Some((line, v)) = s.get("is_linear")
        && v.trim() != "0"
    {
        return Err(err(line, "linear trees are not supported"));
    }
    let leaf_value = s.array("leaf_value", num_leaves)?;
    let leaf_count = optional_counts(s, "leaf_count", num_leaves)?;
    if num_leaves == 1 {
        return Ok(RawTree {
            num_leaves,
            leaf_value,
            leaf_count,
            ..RawTree::default()
        });
    }
    let n = num_leaves - 1;
    let num_cat: usize = s.scalar("num_cat")?;
    let decision_type: Vec<u8> = s.array("decision_type", n)?;
    if let Some(&bad) = decision_type.iter().find(|&&d| d > 15 || (d >> 2) & 3 == 3) {
        return Err(err(
            s.required("decision_type")?.0,
            format!("invalid decision_type {bad}"),
        ));
    }
    let (cat_boundaries, cat_threshold) = if num_cat > 0 {
        let boundaries: Vec<usize> = s.array("cat_boundaries", num_cat + 1)?;
        let (line, v) = s.required("cat_threshold")?;
        let bits: Vec<u32> = s.array("cat_threshold", v.split_ascii_whitespace().count())?;
        if boundaries[0] != 0
            || boundaries.windows(2).any(|w| w[0] > w[1])
            || boundaries[num_cat] != bits.len()
        {
            return Err(err(line, "cat_boundaries do not partition cat_threshold"));
        }
        (boundaries, bits)
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(RawTree {
        num_leaves,
        num_cat,
        split_feature: s.array("split_feature", n)?,
        threshold: s.array("threshold", n)?,
        decision_type,
        left_child: s.array("left_child", n)?,
        right_child: s.array("right_child", n)?,
        leaf_value,
        cat_boundaries,
        cat_threshold,
        leaf_count,
        internal_count: optional_counts(s, "internal_count", n)?,
    })
}

/// A count array (`leaf_count`, `internal_count`) if the block has it: only explanations need
/// them, so an absent key is not an error, but a present one must be well-formed.
fn optional_counts(s: &Section<'_>, key: &str, len: usize) -> Result<Vec<f64>, RankerError> {
    if s.get(key).is_none() {
        return Ok(Vec::new());
    }
    let counts: Vec<f64> = s.array(key, len)?;
    if let Some(bad) = counts.iter().find(|c| !(c.is_finite() && **c >= 0.0)) {
        return Err(err(
            s.required(key)?.0,
            format!("`{key}`: invalid count {bad}"),
        ));
    }
    Ok(counts)
}

/// Appends `tree` to the model in pre-order (left subtree right after its parent) and
/// describes it. Fails unless every internal node and leaf is reached exactly once from node 0,
/// which guarantees that scoring terminates and never indexes out of bounds.
fn append_tree(
    tree: &RawTree,
    line: usize,
    num_features: usize,
    model: &mut NativeModel,
) -> Result<TreeInfo, RankerError> {
    let index = |len: usize| u32::try_from(len).map_err(|_| err(line, "model has too many nodes"));
    let root = index(model.nodes.len())?;
    if tree.num_leaves == 1 {
        model
            .nodes
            .push(Node::leaf(tree.leaf_value[0], root, num_features));
        model
            .cover
            .push(tree.leaf_count.first().copied().unwrap_or(0.0));
        return Ok(TreeInfo {
            root,
            len: 1,
            bitmask: None,
            depth: 0,
            simple: true,
        });
    }
    let n_internal = tree.num_leaves - 1;
    let cat_base = model.cat_bits.len();
    model.cat_bits.extend_from_slice(&tree.cat_threshold);
    let mut seen_internal = vec![false; n_internal];
    let mut seen_leaf = vec![false; tree.num_leaves];
    let mut depth = 0;
    let mut simple = true;
    // (child reference as in the text, index of the parent whose `right` to patch, its depth)
    let mut stack: Vec<(i32, Option<usize>, usize)> = vec![(0, None, 0)];
    while let Some((child, parent, child_depth)) = stack.pop() {
        let idx = model.nodes.len();
        let idx32 = index(idx)?;
        if let Some(p) = parent {
            model.nodes[p].right = idx32;
        }
        if child < 0 {
            let leaf = !child as usize;
            if leaf >= tree.num_leaves || std::mem::replace(&mut seen_leaf[leaf], true) {
                return Err(err(
                    line,
                    format!("leaf {leaf} out of range or reached twice"),
                ));
            }
            model
                .nodes
                .push(Node::leaf(tree.leaf_value[leaf], idx32, num_features));
            model
                .cover
                .push(tree.leaf_count.get(leaf).copied().unwrap_or(f64::NAN));
            depth = depth.max(child_depth);
            continue;
        }
        let k = child as usize;
        if k >= n_internal || std::mem::replace(&mut seen_internal[k], true) {
            return Err(err(line, format!("node {k} out of range or reached twice")));
        }
        let feature = tree.split_feature[k];
        if feature >= num_features {
            return Err(err(
                line,
                format!("split_feature {feature} >= number of features {num_features}"),
            ));
        }
        let node = split_node(tree, k, feature, cat_base, line)?;
        simple &= node.flags() & (CATEGORICAL | ZERO_SPECIAL) == 0;
        model.nodes.push(node);
        model
            .cover
            .push(tree.internal_count.get(k).copied().unwrap_or(f64::NAN));
        stack.push((tree.right_child[k], Some(idx), child_depth + 1));
        stack.push((tree.left_child[k], None, child_depth + 1));
    }
    if seen_internal.contains(&false) || seen_leaf.contains(&false) {
        return Err(err(line, "tree has unreachable nodes or leaves"));
    }
    Ok(TreeInfo {
        root,
        len: index(model.nodes.len())? - root,
        bitmask: None,
        depth: u32::try_from(depth).map_err(|_| err(line, "tree too deep"))?,
        simple,
    })
}

/// Builds the node for internal node `k` (its `right` is patched by the caller).
fn split_node(
    tree: &RawTree,
    k: usize,
    feature: usize,
    cat_base: usize,
    line: usize,
) -> Result<Node, RankerError> {
    let dt = tree.decision_type[k];
    let threshold = tree.threshold[k];
    let feature = feature as u32;
    // LightGBM only consults the categorical bit when the tree has categorical splits.
    if tree.num_cat > 0 && dt & DT_CATEGORICAL != 0 {
        // `static_cast<int>(threshold_[node])` in LightGBM: the index of the split's bitset.
        let cat_idx = threshold as i64;
        if !(threshold.is_finite() && (0..tree.num_cat as i64).contains(&cat_idx)) {
            return Err(err(
                line,
                format!("categorical split {k} refers to bitset {threshold}"),
            ));
        }
        let cat_idx = cat_idx as usize;
        let start = cat_base + tree.cat_boundaries[cat_idx];
        let len = tree.cat_boundaries[cat_idx + 1] - tree.cat_boundaries[cat_idx];
        let start = u32::try_from(start).map_err(|_| err(line, "too many categorical bitsets"))?;
        return Ok(Node {
            payload: (u64::from(start) << 32) | len as u64,
            right: 0,
            meta: feature | (CATEGORICAL << FLAG_SHIFT),
        });
    }
    let default_left = dt & DT_DEFAULT_LEFT != 0;
    let flags = match (dt >> 2) & 3 {
        // NaN is replaced by 0.0 and then compared; zero is compared.
        MISSING_NONE => u32::from(0.0 <= threshold) * SPECIAL_LEFT,
        // NaN becomes 0.0, and 0.0 takes the default direction.
        MISSING_ZERO => (u32::from(default_left) * SPECIAL_LEFT) | ZERO_SPECIAL,
        // NaN takes the default direction; zero is compared.
        MISSING_NAN => u32::from(default_left) * SPECIAL_LEFT,
        _ => {
            return Err(err(
                line,
                format!("invalid missing type in decision_type {dt}"),
            ));
        }
    };
    Ok(Node {
        payload: threshold.to_bits(),
        right: 0,
        meta: feature | (flags << FLAG_SHIFT),
    })
}
