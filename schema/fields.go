package schema

import (
	"reflect"
	"strings"
)

// specFieldOrder is the order of the spec's fields in files and messages:
// the order of Spec's struct fields: identity, what runs, resources,
// storage, environment, config, Helm, image updates (the order a reader of
// the file wants, not the order of the API reference page).
var specFieldOrder, specFieldIndex = func() ([]string, map[string]int) {
	t := reflect.TypeFor[Spec]()
	order := make([]string, t.NumField())
	index := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		order[i] = name
		index[name] = i
	}
	return order, index
}()

// SpecFields lists the spec's field names in the order files use.
func SpecFields() []string { return append([]string(nil), specFieldOrder...) }

// fieldValue returns the value of the named spec field.
func fieldValue(s *Spec, field string) any {
	i, ok := specFieldIndex[field]
	if !ok {
		return nil
	}
	return reflect.ValueOf(s).Elem().Field(i).Interface()
}

// copyField sets the named field of dst to its value in src.
func copyField(dst, src *Spec, field string) {
	i, ok := specFieldIndex[field]
	if !ok {
		return
	}
	reflect.ValueOf(dst).Elem().Field(i).Set(reflect.ValueOf(src).Elem().Field(i))
}
