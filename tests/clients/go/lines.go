// Package clients: what every test producer shares. Each program publishes a log's lines
// verbatim, in file order, keyed as a checkpoint system would: by the line's checkpoint_id; a line
// without one (bad input) goes without a key.
package clients

import (
	"bytes"
	"encoding/json"
	"os"
)

// Line is one message to publish: its value and its key (nil: none).
type Line struct {
	Key   []byte
	Value []byte
}

// ReadLines reads a JSONL log (no gzip), each line's bytes as they are, and decides its key.
func ReadLines(path string) ([]Line, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	data = bytes.TrimSuffix(data, []byte("\n"))
	var out []Line
	for _, value := range bytes.Split(data, []byte("\n")) {
		var event struct {
			CheckpointID *string `json:"checkpoint_id"`
		}
		var key []byte
		if json.Unmarshal(value, &event) == nil && event.CheckpointID != nil {
			key = []byte(*event.CheckpointID)
		}
		out = append(out, Line{Key: key, Value: value})
	}
	return out, nil
}
