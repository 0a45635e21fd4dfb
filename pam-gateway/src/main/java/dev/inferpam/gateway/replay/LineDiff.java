package dev.inferpam.gateway.replay;

import java.util.ArrayList;
import java.util.List;

/**
 * A line diff in unified format ({@code ---}/{@code +++} header, {@code @@ -a,n +b,m @@} hunks,
 * three lines of context), from a longest-common-subsequence table.
 *
 * <p>Bounded: the common head and tail are taken off first, and when what is left would need a
 * table of more than {@link #MAX_CELLS} cells the middle is shown as wholly removed and wholly
 * added — still a correct diff, only not a minimal one — so that two large, different bodies
 * cost at most a few megabytes and milliseconds. Stateless and thread-safe.
 */
final class LineDiff {
  /** Largest LCS table (16 MB of ints); beyond it the middle is not aligned line by line. */
  static final int MAX_CELLS = 4_000_000;

  static final int CONTEXT = 3;

  private enum Op {
    EQUAL,
    DELETE,
    INSERT
  }

  /** One edit: an op and the positions (0-based) in the old and new list before it applies. */
  private record Edit(Op op, int a, int b) {}

  /** The result: unified lines (empty when equal) and whether the alignment is minimal. */
  record Result(List<String> lines, boolean minimal) {
    boolean identical() {
      return lines.isEmpty();
    }
  }

  private LineDiff() {}

  static Result unified(String oldName, String newName, List<String> a, List<String> b) {
    List<Edit> edits = new ArrayList<>(a.size() + b.size());
    int n = a.size();
    int m = b.size();
    int head = 0;
    while (head < n && head < m && a.get(head).equals(b.get(head))) head++;
    int tail = 0;
    while (tail < n - head && tail < m - head && a.get(n - 1 - tail).equals(b.get(m - 1 - tail)))
      tail++;

    for (int i = 0; i < head; i++) edits.add(new Edit(Op.EQUAL, i, i));
    boolean minimal = middle(a, b, head, n - tail, head, m - tail, edits);
    for (int k = tail; k > 0; k--) edits.add(new Edit(Op.EQUAL, n - k, m - k));

    List<String> out = new ArrayList<>();
    if (edits.stream().allMatch(e -> e.op == Op.EQUAL)) return new Result(out, true);
    out.add("--- " + oldName);
    out.add("+++ " + newName);
    hunks(a, b, edits, out);
    return new Result(out, minimal);
  }

  /** Aligns a[a0,a1) with b[b0,b1); false when it was too large to align. */
  private static boolean middle(
      List<String> a, List<String> b, int a0, int a1, int b0, int b1, List<Edit> edits) {
    int n = a1 - a0;
    int m = b1 - b0;
    if ((long) (n + 1) * (m + 1) > MAX_CELLS) {
      for (int i = a0; i < a1; i++) edits.add(new Edit(Op.DELETE, i, b0));
      for (int j = b0; j < b1; j++) edits.add(new Edit(Op.INSERT, a1, j));
      return false;
    }
    // lcs[i][j]: length of the LCS of a[a0+i..a1) and b[b0+j..b1), in one flat array
    int w = m + 1;
    int[] lcs = new int[(n + 1) * w];
    for (int i = n - 1; i >= 0; i--) {
      for (int j = m - 1; j >= 0; j--) {
        lcs[i * w + j] =
            a.get(a0 + i).equals(b.get(b0 + j))
                ? lcs[(i + 1) * w + j + 1] + 1
                : Math.max(lcs[(i + 1) * w + j], lcs[i * w + j + 1]);
      }
    }
    int i = 0;
    int j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && a.get(a0 + i).equals(b.get(b0 + j))) {
        edits.add(new Edit(Op.EQUAL, a0 + i++, b0 + j++));
      } else if (j < m && (i == n || lcs[i * w + j + 1] >= lcs[(i + 1) * w + j])) {
        edits.add(new Edit(Op.INSERT, a0 + i, b0 + j++));
      } else {
        edits.add(new Edit(Op.DELETE, a0 + i++, b0 + j));
      }
    }
    // Deletions before insertions within a change reads better; the LCS walk may interleave them.
    reorderChanges(edits);
    return true;
  }

  /** Within each run of non-equal edits, puts the deletions first (positions are recomputed). */
  private static void reorderChanges(List<Edit> edits) {
    int k = 0;
    while (k < edits.size()) {
      if (edits.get(k).op == Op.EQUAL) {
        k++;
        continue;
      }
      int start = k;
      while (k < edits.size() && edits.get(k).op != Op.EQUAL) k++;
      Edit first = edits.get(start);
      int aPos = first.a;
      int bPos = first.b;
      List<Edit> run = edits.subList(start, k);
      long deletes = run.stream().filter(e -> e.op == Op.DELETE).count();
      long inserts = run.size() - deletes;
      List<Edit> ordered = new ArrayList<>(run.size());
      for (int d = 0; d < deletes; d++) ordered.add(new Edit(Op.DELETE, aPos + d, bPos));
      for (int s = 0; s < inserts; s++)
        ordered.add(new Edit(Op.INSERT, aPos + (int) deletes, bPos + s));
      for (int r = 0; r < ordered.size(); r++) edits.set(start + r, ordered.get(r));
    }
  }

  private static void hunks(List<String> a, List<String> b, List<Edit> edits, List<String> out) {
    int k = 0;
    int size = edits.size();
    while (k < size) {
      while (k < size && edits.get(k).op == Op.EQUAL) k++;
      if (k == size) break;
      int start = Math.max(0, k - CONTEXT);
      // extend over changes separated by at most 2 * CONTEXT equal lines
      int end = k;
      int lastChange = k;
      while (end < size) {
        if (edits.get(end).op != Op.EQUAL) {
          lastChange = end;
        } else if (end - lastChange > 2 * CONTEXT) {
          break;
        }
        end++;
      }
      end = Math.min(size, lastChange + 1 + CONTEXT);

      int aLen = 0;
      int bLen = 0;
      List<String> body = new ArrayList<>();
      for (int e = start; e < end; e++) {
        Edit edit = edits.get(e);
        switch (edit.op) {
          case EQUAL -> {
            body.add(" " + a.get(edit.a));
            aLen++;
            bLen++;
          }
          case DELETE -> {
            body.add("-" + a.get(edit.a));
            aLen++;
          }
          case INSERT -> {
            body.add("+" + b.get(edit.b));
            bLen++;
          }
        }
      }
      Edit first = edits.get(start);
      // unified convention: an empty range names the line before it
      int aStart = aLen == 0 ? first.a : first.a + 1;
      int bStart = bLen == 0 ? first.b : first.b + 1;
      out.add("@@ -" + range(aStart, aLen) + " +" + range(bStart, bLen) + " @@");
      out.addAll(body);
      k = end;
    }
  }

  private static String range(int start, int len) {
    return len == 1 ? String.valueOf(start) : start + "," + len;
  }
}
