package com.sportrix.examples;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.avro.message.MissingSchemaException;

/** Decodes values into {@link GenericRecord}s, the writer schema picked by fingerprint. */
final class GenericDecoding implements LiveScoresConsumer.ValueDecoder {

  // --8<-- [start:generic]
  private final Map<Long, BinaryMessageDecoder<GenericRecord>> byFingerprint = new HashMap<>();

  GenericDecoding(List<AvscFiles> schemas) {
    for (AvscFiles avsc : schemas) {
      Schema schema = avsc.schema();
      byFingerprint.put(
          SchemaNormalization.parsingFingerprint64(schema),
          new BinaryMessageDecoder<>(GenericData.get(), schema));
    }
  }

  @Override
  public LiveScoresConsumer.Decoded decode(byte[] value) throws java.io.IOException {
    long fingerprint = LiveScoresConsumer.fingerprint(value);
    BinaryMessageDecoder<GenericRecord> decoder = byFingerprint.get(fingerprint);
    if (decoder == null) {
      throw new MissingSchemaException(
          "no .avsc has the fingerprint " + Long.toUnsignedString(fingerprint, 16));
    }
    GenericRecord record = decoder.decode(value);
    return new LiveScoresConsumer.Decoded(
        record.getSchema().getFullName(), GenericData.get().toString(record));
  }
  // --8<-- [end:generic]
}
