package com.sportrix.examples;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.apache.avro.Schema;

/** The {@code *.avsc} files of one folder (not its sub-folders), each parsed on its own. */
record AvscFiles(Path file, Schema schema) {

  /** The schemas of {@code dir}, then those of its {@code released/} folder, if any. */
  static List<AvscFiles> loadWithReleases(Path dir) throws IOException {
    List<AvscFiles> all = new java.util.ArrayList<>(load(dir));
    if (Files.isDirectory(dir.resolve("released"))) {
      all.addAll(load(dir.resolve("released")));
    }
    return all;
  }

  static List<AvscFiles> load(Path dir) throws IOException {
    try (Stream<Path> files = Files.list(dir)) {
      List<Path> paths = files.filter(p -> p.toString().endsWith(".avsc")).sorted().toList();
      if (paths.isEmpty()) {
        throw new IOException("no .avsc file in " + dir);
      }
      List<AvscFiles> loaded = new java.util.ArrayList<>();
      for (Path path : paths) {
        // One parser per file: every file is self-contained, and released versions of one
        // record share its name.
        loaded.add(new AvscFiles(path, new Schema.Parser().parse(path.toFile())));
      }
      return loaded;
    }
  }
}
