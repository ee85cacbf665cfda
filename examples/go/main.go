// Command live-scores-consumer reads the live-scores topic from the beginning with franz-go and
// prints every record as one JSON line: partition, offset, key, the "schema" header, the writer
// schema's full name and the decoded fields this program declares.
//
// Values are Avro single-object encoded: C3 01, the writer schema's CRC-64-AVRO fingerprint
// (8 bytes, little-endian), then the Avro body. The writer schema is picked by that fingerprint
// among the .avsc files of the schemas folder and of its released/ folder.
//
//	usage: live-scores-consumer BOOTSTRAP_SERVERS TOPIC SCHEMAS_DIR MAX_RECORDS
//
// MAX_RECORDS 0 reads forever. A value that cannot be decoded stops the program with exit code 1.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
)

// MatchState holds the fields this consumer reads; the decoder skips the others.
type MatchState struct {
	MatchID int64          `avro:"match_id" json:"match_id"`
	Sport   string         `avro:"sport" json:"sport"`
	Op      string         `avro:"op" json:"op"`
	Seq     *int64         `avro:"seq" json:"seq"`
	Score   map[string]any `avro:"score" json:"score"`
}

// Line is what the program prints for each record.
type Line struct {
	Partition int32      `json:"partition"`
	Offset    int64      `json:"offset"`
	Key       string     `json:"key"`
	Schema    string     `json:"schema"`
	Name      string     `json:"name"`
	Record    MatchState `json:"record"`
}

// --8<-- [start:schemas]
// loadSchemas parses every .avsc file of dir and of dir/released (earlier versions), keyed by
// its fingerprint as single-object encoding writes it.
func loadSchemas(dir string) (map[[8]byte]*avro.RecordSchema, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.avsc"))
	if err != nil || len(paths) == 0 {
		return nil, fmt.Errorf("no .avsc file in %s", dir)
	}
	released, _ := filepath.Glob(filepath.Join(dir, "released", "*.avsc"))
	paths = append(paths, released...)
	schemas := make(map[[8]byte]*avro.RecordSchema)
	for _, path := range paths {
		text, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		// A fresh cache per file: each file is self-contained.
		schema, err := avro.ParseBytesWithCache(text, "", &avro.SchemaCache{})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		record, ok := schema.(*avro.RecordSchema)
		if !ok {
			return nil, fmt.Errorf("%s: not a record schema", path)
		}
		fingerprint, err := specFingerprint(text)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		schemas[fingerprint] = record
	}
	return schemas, nil
}

// --8<-- [end:schemas]

// --8<-- [start:fingerprint]
// specFingerprint is the schema's CRC-64-AVRO fingerprint, little-endian, as the Avro
// specification defines it. hamba/avro keeps "logicalType" in its canonical form, where the
// specification (and Avro Java, fastavro) strip it, so the schema is fingerprinted without them.
func specFingerprint(text []byte) ([8]byte, error) {
	var parsed any
	if err := json.Unmarshal(text, &parsed); err != nil {
		return [8]byte{}, err
	}
	stripped, err := json.Marshal(withoutLogicalTypes(parsed))
	if err != nil {
		return [8]byte{}, err
	}
	schema, err := avro.ParseBytesWithCache(stripped, "", &avro.SchemaCache{})
	if err != nil {
		return [8]byte{}, err
	}
	fingerprint, err := schema.FingerprintUsing(avro.CRC64AvroLE)
	if err != nil {
		return [8]byte{}, err
	}
	return [8]byte(fingerprint), nil
}

func withoutLogicalTypes(v any) any {
	switch v := v.(type) {
	case map[string]any:
		delete(v, "logicalType")
		for key, item := range v {
			v[key] = withoutLogicalTypes(item)
		}
	case []any:
		for i, item := range v {
			v[i] = withoutLogicalTypes(item)
		}
	}
	return v
}

// --8<-- [end:fingerprint]

// --8<-- [start:decode]
// decode reads one single-object encoded value with the schema its fingerprint names.
func decode(schemas map[[8]byte]*avro.RecordSchema, value []byte) (*avro.RecordSchema, MatchState, error) {
	var state MatchState
	if len(value) < 10 || !bytes.Equal(value[:2], []byte{0xC3, 0x01}) {
		return nil, state, fmt.Errorf("not an Avro single-object encoded value")
	}
	schema, ok := schemas[[8]byte(value[2:10])]
	if !ok {
		return nil, state, fmt.Errorf("no .avsc has the fingerprint %x (little-endian)", value[2:10])
	}
	err := avro.Unmarshal(schema, value[10:], &state)
	return schema, state, err
}

// --8<-- [end:decode]

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: live-scores-consumer BOOTSTRAP_SERVERS TOPIC SCHEMAS_DIR MAX_RECORDS")
		os.Exit(2)
	}
	schemas, err := loadSchemas(os.Args[3])
	if err != nil {
		log.Fatal(err)
	}
	maxRecords, err := strconv.Atoi(os.Args[4])
	if err != nil {
		log.Fatalf("MAX_RECORDS: %v", err)
	}

	// --8<-- [start:consumer]
	client, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(os.Args[1], ",")...),
		kgo.ConsumeTopics(os.Args[2]),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	out := json.NewEncoder(os.Stdout)
	for seen := 0; maxRecords == 0 || seen < maxRecords; {
		fetches := client.PollFetches(context.Background())
		if errs := fetches.Errors(); len(errs) > 0 {
			log.Fatalf("fetch: %v", errs)
		}
		for iter := fetches.RecordIter(); !iter.Done() && (maxRecords == 0 || seen < maxRecords); seen++ {
			record := iter.Next()
			schema, state, err := decode(schemas, record.Value)
			if err != nil {
				log.Fatalf("%s[%d]@%d: %v", record.Topic, record.Partition, record.Offset, err)
			}
			header := ""
			for _, h := range record.Headers {
				if h.Key == "schema" {
					header = string(h.Value)
				}
			}
			line := Line{record.Partition, record.Offset, string(record.Key), header, schema.FullName(), state}
			if err := out.Encode(line); err != nil {
				log.Fatal(err)
			}
		}
	}
	// --8<-- [end:consumer]
}
