package com.sportrix.examples;

import com.sportrix.livescores.CricketMatchState;
import com.sportrix.livescores.SoccerMatchState;
import java.util.List;
import java.util.Map;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.avro.message.MissingSchemaException;
import org.apache.avro.message.SchemaStore;

/**
 * Decodes values into the classes avro-maven-plugin generated from {@code schemas/}. The writer
 * schema is found by fingerprint in a {@link SchemaStore}; its full name picks the class, whose
 * decoder resolves the writer schema to the class's own (so older or newer writers still read).
 */
final class SpecificDecoding implements LiveScoresConsumer.ValueDecoder {

  // --8<-- [start:specific]
  private final SchemaStore.Cache writers = new SchemaStore.Cache();
  private final Map<String, BinaryMessageDecoder<?>> byName;

  SpecificDecoding(List<AvscFiles> schemas) {
    schemas.forEach(avsc -> writers.addSchema(avsc.schema()));
    byName =
        Map.of(
            SoccerMatchState.getClassSchema().getFullName(),
            SoccerMatchState.createDecoder(writers),
            CricketMatchState.getClassSchema().getFullName(),
            CricketMatchState.createDecoder(writers));
  }

  @Override
  public LiveScoresConsumer.Decoded decode(byte[] value) throws java.io.IOException {
    long fingerprint = LiveScoresConsumer.fingerprint(value);
    Schema writer = writers.findByFingerprint(fingerprint);
    BinaryMessageDecoder<?> decoder = writer == null ? null : byName.get(writer.getFullName());
    if (decoder == null) {
      throw new MissingSchemaException(
          "no generated class for fingerprint " + Long.toUnsignedString(fingerprint, 16));
    }
    Object record = decoder.decode(value);
    if (record instanceof SoccerMatchState soccer) {
      return decoded(soccer.getSchema(), soccer.getMatchId(), soccer.getSport(),
          soccer.getOp(), soccer.getSeq(), soccer.getScore());
    }
    CricketMatchState cricket = (CricketMatchState) record;
    return decoded(cricket.getSchema(), cricket.getMatchId(), cricket.getSport(),
        cricket.getOp(), cricket.getSeq(), cricket.getScore());
  }
  // --8<-- [end:specific]

  private static LiveScoresConsumer.Decoded decoded(
      Schema schema, long matchId, String sport, Object op, Long seq, Object score) {
    GenericData json = GenericData.get();
    return new LiveScoresConsumer.Decoded(
        schema.getFullName(),
        "{\"match_id\": " + matchId
            + ", \"sport\": " + json.toString(sport)
            + ", \"op\": " + json.toString(op.toString())
            + ", \"seq\": " + seq
            + ", \"score\": " + json.toString(score) + "}");
  }
}
