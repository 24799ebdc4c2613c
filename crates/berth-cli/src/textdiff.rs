//! A unified line diff for config texts (`diff --version N`).
//!
//! Configs are small, so a plain LCS table is enough; hunks carry three
//! lines of context, as `diff -u` does.

const CONTEXT: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Same(usize, usize),
    Del(usize),
    Add(usize),
}

fn ops(a: &[&str], b: &[&str]) -> Vec<Op> {
    let (n, m) = (a.len(), b.len());
    // lcs[i][j]: length of the common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::with_capacity(n + m));
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            out.push(Op::Same(i, j));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push(Op::Del(i));
            i += 1;
        } else {
            out.push(Op::Add(j));
            j += 1;
        }
    }
    out
}

/// Groups of op indexes: each change with up to CONTEXT lines around it,
/// changes closer than 2×CONTEXT sharing a hunk.
fn hunks(ops: &[Op]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for (k, op) in ops.iter().enumerate() {
        if matches!(op, Op::Same(..)) {
            continue;
        }
        let start = k.saturating_sub(CONTEXT);
        let end = (k + CONTEXT + 1).min(ops.len());
        match out.last_mut() {
            Some(last) if start <= last.1 => last.1 = end,
            _ => out.push((start, end)),
        }
    }
    out
}

fn range(start: usize, len: usize) -> String {
    // diff -u numbers from 1, and an empty range names the line before it.
    let first = if len == 0 { start } else { start + 1 };
    if len == 1 {
        first.to_string()
    } else {
        format!("{first},{len}")
    }
}

/// The unified diff of `old` → `new`, or "" when they are equal.
pub fn unified(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    // Lines keep their ends, so a missing last newline or a CR differs.
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    let ops = ops(&a, &b);
    let hunks = hunks(&ops);
    if hunks.is_empty() {
        return String::new();
    }
    let mut out = format!("--- {old_name}\n+++ {new_name}\n");
    for (s, e) in hunks {
        let part = &ops[s..e];
        let (mut a0, mut b0) = (None, None);
        let (mut alen, mut blen) = (0, 0);
        let mut body = String::new();
        for op in part {
            match *op {
                Op::Same(i, j) => {
                    a0.get_or_insert(i);
                    b0.get_or_insert(j);
                    alen += 1;
                    blen += 1;
                    line(&mut body, ' ', a[i]);
                }
                Op::Del(i) => {
                    a0.get_or_insert(i);
                    alen += 1;
                    line(&mut body, '-', a[i]);
                }
                Op::Add(j) => {
                    b0.get_or_insert(j);
                    blen += 1;
                    line(&mut body, '+', b[j]);
                }
            }
        }
        let a_start = a0.unwrap_or_else(|| before(&ops[..s], true));
        let b_start = b0.unwrap_or_else(|| before(&ops[..s], false));
        out.push_str(&format!(
            "@@ -{} +{} @@\n{body}",
            range(a_start, alen),
            range(b_start, blen)
        ));
    }
    out
}

/// One line of a hunk, as `diff -u` writes it, ending included.
fn line(body: &mut String, mark: char, l: &str) {
    body.push(mark);
    body.push_str(l);
    if !l.ends_with('\n') {
        body.push_str("\n\\ No newline at end of file\n");
    }
}

/// Lines of one side consumed by `ops`: where a hunk with nothing on
/// that side starts.
fn before(ops: &[Op], old: bool) -> usize {
    ops.iter()
        .filter(|o| match o {
            Op::Same(..) => true,
            Op::Del(_) => old,
            Op::Add(_) => !old,
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::unified;

    #[test]
    fn equal_texts_give_nothing() {
        assert_eq!(unified("a\nb\n", "a\nb\n", "x", "y"), "");
    }

    #[test]
    fn one_changed_line_with_context() {
        let old = "[DEFAULT]\nnodes = *\n\n[container#0]\nimage = web:1\nstop_timeout = 1s\n";
        let new = "[DEFAULT]\nnodes = *\n\n[container#0]\nimage = web:2\nstop_timeout = 1s\n";
        let d = unified(old, new, "web version 1", "web current");
        assert_eq!(
            d,
            "--- web version 1\n+++ web current\n@@ -2,5 +2,5 @@\n nodes = *\n \n [container#0]\n-image = web:1\n+image = web:2\n stop_timeout = 1s\n"
        );
    }

    #[test]
    fn additions_at_the_end_and_far_apart_hunks() {
        let old: String = (1..=20).map(|i| format!("l{i}\n")).collect();
        let mut new = old.replace("l2\n", "L2\n");
        new.push_str("l21\n");
        let d = unified(&old, &new, "a", "b");
        assert!(d.contains("@@ -1,5 +1,5 @@\n l1\n-l2\n+L2\n l3\n"), "{d}");
        assert!(
            d.contains("@@ -18,3 +18,4 @@\n l18\n l19\n l20\n+l21\n"),
            "{d}"
        );
    }

    #[test]
    fn a_missing_last_newline_differs_as_diff_u_says() {
        assert_eq!(
            unified("a\n", "a", "x", "y"),
            "--- x\n+++ y\n@@ -1 +1 @@\n-a\n+a\n\\ No newline at end of file\n"
        );
    }

    #[test]
    fn from_nothing() {
        assert_eq!(
            unified("", "a\n", "x", "y"),
            "--- x\n+++ y\n@@ -0,0 +1 @@\n+a\n"
        );
    }
}
