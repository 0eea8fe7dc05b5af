package vendorsim

import (
	"bytes"
	"encoding/csv"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// form is a parsed multipart upload: the file in csv_file (fallback: file, ecore.md §6.1)
// and the text fields.
type form struct {
	file     []byte
	filename string
	fields   map[string]string
}

// readMultipart parses body when the request is multipart/form-data; ok is false
// otherwise. A malformed multipart body is read as far as it goes.
func readMultipart(r *http.Request, body []byte) (form, bool) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return form{}, false
	}
	f := form{fields: map[string]string{}}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var fallback []byte
	var fallbackName string
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		data, _ := io.ReadAll(p)
		switch name := p.FormName(); {
		case name == "csv_file" && f.file == nil:
			f.file, f.filename = data, p.FileName()
		case name == "file" && fallback == nil:
			fallback, fallbackName = data, p.FileName()
		case p.FileName() == "":
			f.fields[name] = string(data)
		}
	}
	if f.file == nil && fallback != nil {
		f.file, f.filename = fallback, fallbackName
	}
	return f, true
}

// table is a CSV file: lowercase trimmed headers and rows.
type table struct {
	header []string
	rows   [][]string
}

// readCSV parses an uploaded CSV, or returns the 400 message. Excel files (.xls, .xlsx,
// .xlsm, accepted by eCore per §6.1) are not simulated.
func readCSV(f form) (table, string) {
	lower := strings.ToLower(f.filename)
	for _, ext := range []string{".xls", ".xlsx", ".xlsm"} {
		if strings.HasSuffix(lower, ext) {
			return table{}, "The simulator reads CSV files only."
		}
	}
	cr := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(f.file, []byte("\ufeff"))))
	cr.FieldsPerRecord = -1
	recs, err := cr.ReadAll()
	if err != nil || len(recs) == 0 {
		return table{}, "The file could not be read as CSV."
	}
	t := table{rows: recs[1:]}
	for _, h := range recs[0] {
		t.header = append(t.header, strings.ToLower(strings.TrimSpace(h)))
	}
	return t, ""
}

// column returns the index of the first header among names (case-insensitive), or -1.
func (t table) column(names ...string) (int, bool) {
	for i, h := range t.header {
		for _, n := range names {
			if h == n {
				return i, true
			}
		}
	}
	return -1, false
}

func cell(row []string, i int) string {
	if i < 0 || i >= len(row) {
		return ""
	}
	return strings.TrimSpace(row[i])
}

// writePage answers a DRF page-number page: count, total_pages, current_page, next,
// previous (absolute URLs or null), results (ecore.md §6.2/§6.4). page_size above max is
// clamped to max, an unusable page or page_size falls back to the default, and a page past
// the last is DRF's 404 {"detail":"Invalid page."} (INFERENCE).
func writePage(w http.ResponseWriter, r *http.Request, items []map[string]any, defSize, maxSize int) {
	q := r.URL.Query()
	page := queryInt(q.Get("page"), 1)
	size := queryInt(q.Get("page_size"), defSize)
	if size < 1 {
		size = defSize
	}
	size = min(size, maxSize)
	pages := max(1, int(math.Ceil(float64(len(items))/float64(size))))
	if page < 1 || page > pages {
		writeJSON(w, http.StatusNotFound, drfDetail("Invalid page."))
		return
	}
	lo := (page - 1) * size
	hi := min(lo+size, len(items))
	link := func(p int) any {
		if p < 1 || p > pages {
			return nil
		}
		v := url.Values{}
		for k, vs := range q {
			v[k] = vs
		}
		v.Set("page", strconv.Itoa(p))
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		return scheme + "://" + r.Host + r.URL.Path + "?" + v.Encode()
	}
	results := items[lo:hi]
	if results == nil {
		results = []map[string]any{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"count": len(items), "total_pages": pages, "current_page": page,
		"next": link(page + 1), "previous": link(page - 1), "results": results})
}
