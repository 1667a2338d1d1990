package transfer

import (
	"testing"
)

// FuzzReadCSV feeds arbitrary bytes to the CSV importer in each encoding mode
// and catalogue: it never panics, refuses a bad file as ErrFile, and gives every
// row a record or errors.
func FuzzReadCSV(f *testing.F) {
	f.Add([]byte(supplyCSV), uint8(0))
	f.Add([]byte("\xef\xbb\xbf"+supplyCSV), uint8(1))
	f.Add([]byte("编号,标题\n\"unterminated,x\n"), uint8(2))
	f.Add([]byte("\xb1\xea\xcc\xe2,\xd5\xaa\xd2\xaa\n\xd5\xfd\xbc\xab,x\n"), uint8(3)) // GB18030 标题,摘要
	f.Add([]byte("编号,编号,标题\n1,2,3\n"), uint8(4))
	f.Add([]byte(",,,,\n,,,\n"), uint8(5))
	encodings := []string{EncodingAuto, EncodingUTF8, EncodingGB18030}
	catalogues := []string{"supply", "need", "expert"}
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		readNoPanic(t, data, Options{Format: FormatCSV, Encoding: encodings[int(mode)%3], Catalogue: catalogues[int(mode/3)%3], Centre: "tianjin"})
	})
}

// FuzzReadJSONL feeds arbitrary bytes to the JSON Lines importer.
func FuzzReadJSONL(f *testing.F) {
	f.Add([]byte(`{"catalogue":"supply","visibility":"federation","body":{"title":"高镍三元正极材料","summary":"s","industry":"new-materials"}}` + "\n"))
	f.Add([]byte(`{"catalogue":"need","body":{"title":"t","kind":"challenge","budget":{"min":1e400}}}` + "\n{\n"))
	f.Add([]byte(`{"a":1,"a":2}` + "\n" + `[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]` + "\n"))
	f.Add([]byte("\xff\xfe\n\x00\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		readNoPanic(t, data, Options{Format: FormatJSONL, Catalogue: "supply", Centre: "tianjin"})
	})
}
