package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// EnvPrefix starts the name of every environment override.
const EnvPrefix = "LATCH_"

var durationType = reflect.TypeFor[Duration]()

// ApplyEnv overrides scalar keys from the environment, read through getenv
// (os.Getenv in main, a map in tests). The variable of a key is EnvPrefix and
// its path upper-cased and joined with "_": tokens.access_token_lifespan is
// LATCH_TOKENS_ACCESS_TOKEN_LIFESPAN. The lists clients, users and
// trusted_issuers have no variables. An empty variable is ignored, so a
// variable cannot clear a value. Every unparsable value is reported, each
// naming its variable.
func (f *File) ApplyEnv(getenv func(string) string) error {
	var errs []error
	eachScalar(reflect.ValueOf(f).Elem(), EnvPrefix, func(name string, v reflect.Value) {
		s := getenv(name)
		if s == "" {
			return
		}
		if err := setScalar(v, s); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	})
	if getenv(EnvPrefix+"ISSUER") != "" {
		f.IssuerSet = true
	}
	return errors.Join(errs...)
}

// EnvNames lists every variable ApplyEnv reads, in file order; for help
// texts and documentation.
func EnvNames() []string {
	var names []string
	var f File
	eachScalar(reflect.ValueOf(&f).Elem(), EnvPrefix, func(name string, _ reflect.Value) {
		names = append(names, name)
	})
	return names
}

// eachScalar calls fn for every scalar field under v, with its variable name.
func eachScalar(v reflect.Value, prefix string, fn func(string, reflect.Value)) {
	t := v.Type()
	for i := range t.NumField() {
		key := yamlKey(t.Field(i))
		if key == "" || key == "-" {
			continue
		}
		name := prefix + strings.ToUpper(key)
		fv := v.Field(i)
		switch {
		case fv.Type() == durationType:
			fn(name, fv)
		case fv.Kind() == reflect.Struct:
			eachScalar(fv, name+"_", fn)
		case fv.Kind() == reflect.String, fv.Kind() == reflect.Bool,
			fv.Kind() == reflect.Float64, fv.Kind() == reflect.Int:
			fn(name, fv)
		}
	}
}

func setScalar(v reflect.Value, s string) error {
	if v.Type() == durationType {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q (use e.g. 30s, 10m, 1h)", s)
		}
		v.Set(reflect.ValueOf(Duration{d}))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("invalid boolean %q (use true or false)", s)
		}
		v.SetBool(b)
	case reflect.Float64:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("invalid number %q", s)
		}
		v.SetFloat(x)
	case reflect.Int:
		x, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("invalid integer %q", s)
		}
		v.SetInt(int64(x))
	}
	return nil
}
