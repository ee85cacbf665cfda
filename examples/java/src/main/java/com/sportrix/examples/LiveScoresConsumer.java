package com.sportrix.examples;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import java.util.UUID;
import org.apache.avro.generic.GenericData;
import org.apache.avro.message.BadHeaderException;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * Reads the live-scores topic from the beginning with kafka-clients and prints every record as
 * one JSON line: partition, offset, key, the {@code schema} header, the writer schema's full
 * name and the decoded record.
 *
 * <p>Values are Avro single-object encoded: {@code C3 01}, the writer schema's CRC-64-AVRO
 * fingerprint (8 bytes, little-endian), then the Avro body. The writer schema is picked by that
 * fingerprint among the {@code .avsc} files of the schemas folder and of its {@code released/}
 * folder (earlier versions of the schemas).
 *
 * <pre>
 * usage: LiveScoresConsumer generic|specific BOOTSTRAP_SERVERS TOPIC SCHEMAS_DIR MAX_RECORDS
 * </pre>
 *
 * {@code generic} decodes into {@code GenericRecord}s, {@code specific} into the classes that
 * avro-maven-plugin generated from {@code schemas/}. {@code MAX_RECORDS} 0 reads forever. A value
 * that cannot be decoded stops the program with exit code 1.
 */
public final class LiveScoresConsumer {

  /** Decodes one Kafka value into a record; says which schema wrote it. */
  interface ValueDecoder {
    Decoded decode(byte[] value) throws java.io.IOException;
  }

  /** A decoded value: the writer schema's full name and the record as JSON. */
  record Decoded(String schemaName, String json) {}

  private LiveScoresConsumer() {}

  // --8<-- [start:fingerprint]
  /** The writer schema's fingerprint, read from a single-object encoded value. */
  static long fingerprint(byte[] value) throws BadHeaderException {
    if (value == null || value.length < 10 || value[0] != (byte) 0xC3 || value[1] != 0x01) {
      throw new BadHeaderException("not an Avro single-object encoded value");
    }
    return ByteBuffer.wrap(value, 2, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
  }
  // --8<-- [end:fingerprint]

  public static void main(String[] args) throws Exception {
    if (args.length != 5 || !List.of("generic", "specific").contains(args[0])) {
      System.err.println(
          "usage: LiveScoresConsumer generic|specific BOOTSTRAP_SERVERS TOPIC SCHEMAS_DIR"
              + " MAX_RECORDS");
      System.exit(2);
    }
    // Every release too, so values of older writers are found by their fingerprint.
    List<AvscFiles> schemas = AvscFiles.loadWithReleases(Path.of(args[3]));
    ValueDecoder decoder =
        args[0].equals("generic") ? new GenericDecoding(schemas) : new SpecificDecoding(schemas);
    long maxRecords = Long.parseLong(args[4]);

    // --8<-- [start:consumer]
    Properties props = new Properties();
    props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, args[1]);
    props.put(ConsumerConfig.GROUP_ID_CONFIG, "live-scores-example-" + UUID.randomUUID());
    props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    try (KafkaConsumer<String, byte[]> consumer =
        new KafkaConsumer<>(props, new StringDeserializer(), new ByteArrayDeserializer())) {
      consumer.subscribe(List.of(args[2]));
      long seen = 0;
      while (maxRecords == 0 || seen < maxRecords) {
        for (ConsumerRecord<String, byte[]> record : consumer.poll(Duration.ofSeconds(1))) {
          Decoded decoded = decoder.decode(record.value());
          System.out.println(line(record, decoded));
          if (++seen == maxRecords) {
            break;
          }
        }
      }
    }
    // --8<-- [end:consumer]
  }

  private static String line(ConsumerRecord<String, byte[]> record, Decoded decoded) {
    Header schema = record.headers().lastHeader("schema");
    String header = schema == null ? null : new String(schema.value(), StandardCharsets.UTF_8);
    return "{\"partition\": " + record.partition()
        + ", \"offset\": " + record.offset()
        + ", \"key\": " + GenericData.get().toString(record.key())
        + ", \"schema\": " + GenericData.get().toString(header)
        + ", \"name\": " + GenericData.get().toString(decoded.schemaName())
        + ", \"record\": " + decoded.json() + "}";
  }
}
