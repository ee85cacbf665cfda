package com.sportrix.examples;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.avro.Schema;
import org.apache.avro.SchemaCompatibility;
import org.apache.avro.SchemaCompatibility.Incompatibility;
import org.apache.avro.SchemaCompatibility.SchemaPairCompatibility;

/**
 * The schema evolution gate: every released schema must still be readable by, and able to read,
 * the current schema of the same full name (backward AND forward compatible, Avro's own
 * {@link SchemaCompatibility} rules).
 *
 * <pre>
 * usage: CheckCompatibility CURRENT_DIR RELEASED_DIR
 * </pre>
 *
 * Prints one line per pair checked and one per incompatibility; exits 1 if any pair fails or a
 * released record has no current schema, 2 on bad arguments.
 */
public final class CheckCompatibility {

  private CheckCompatibility() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 2) {
      System.err.println("usage: CheckCompatibility CURRENT_DIR RELEASED_DIR");
      System.exit(2);
    }
    Map<String, AvscFiles> current = new HashMap<>();
    for (AvscFiles avsc : AvscFiles.load(Path.of(args[0]))) {
      current.put(avsc.schema().getFullName(), avsc);
    }
    int failures = 0;
    for (AvscFiles released : AvscFiles.load(Path.of(args[1]))) {
      String name = released.schema().getFullName();
      AvscFiles now = current.get(name);
      if (now == null) {
        System.out.println("FAIL " + released.file() + ": " + name
            + " was released but no current .avsc defines it (its consumers would break)");
        failures++;
        continue;
      }
      String pair = now.file().getFileName() + " vs released " + released.file().getFileName();
      failures += report("backward", pair, "the current schema cannot read data written with the"
          + " released one", SchemaCompatibility.checkReaderWriterCompatibility(
              now.schema(), released.schema()));
      failures += report("forward", pair, "the released schema cannot read data written with the"
          + " current one", SchemaCompatibility.checkReaderWriterCompatibility(
              released.schema(), now.schema()));
    }
    System.out.println(failures == 0 ? "compatible" : failures + " incompatible pair(s)");
    System.exit(failures == 0 ? 0 : 1);
  }

  private static int report(
      String direction, String pair, String meaning, SchemaPairCompatibility result) {
    List<Incompatibility> problems = result.getResult().getIncompatibilities();
    if (problems.isEmpty()) {
      System.out.println("ok   " + direction + ": " + pair);
      return 0;
    }
    System.out.println("FAIL " + direction + ": " + pair + ": " + meaning);
    for (Incompatibility problem : problems) {
      System.out.println("     " + problem.getType() + " at " + problem.getLocation() + ": "
          + problem.getMessage());
    }
    return 1;
  }
}
