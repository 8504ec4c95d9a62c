package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// yaml.v3 reports decoding problems as "line N: ..." strings that name Go
// types (config.Database) rather than keys. explain rewrites them against
// the parsed node tree so that each names the file, the line and the key.
var (
	unknownRe = regexp.MustCompile(`^line (\d+): field (.*) not found in type \S+$`)
	typeRe    = regexp.MustCompile("^line (\\d+): cannot unmarshal (!!\\w+)(?: `(.*)`)? into (.+)$")
	posRe     = regexp.MustCompile(`^line (\d+): column (\d+): (.*)$`)
	lineRe    = regexp.MustCompile(`^line (\d+): (.*)$`)
)

// positioned is the error of our own UnmarshalYAML methods. The position lets
// explain find the exact node, hence its key path.
func positioned(n *yaml.Node, msg string) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: column %d: %s", n.Line, n.Column, msg)}}
}

// spot is one node of the document: a mapping key (isKey; path is the path of
// the mapping that holds it) or a value (path is its own path).
type spot struct {
	line, col  int
	isKey      bool
	key        string
	tag, value string
	path       string
}

func explain(name string, data []byte, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if m := lineRe.FindStringSubmatch(msg); m != nil {
			return fmt.Errorf("%s line %s: %s", name, m[1], m[2])
		}
		return fmt.Errorf("%s: %s", name, msg)
	}
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root) // it parsed once already; only types failed
	var spots []spot
	walk(&root, "", &spots)
	errs := make([]error, 0, len(te.Errors))
	for _, msg := range te.Errors {
		errs = append(errs, fmt.Errorf("%s %s", name, reword(msg, spots)))
	}
	return errors.Join(errs...)
}

func walk(n *yaml.Node, path string, spots *[]spot) {
	add := func(v *yaml.Node, p string) {
		*spots = append(*spots, spot{line: v.Line, col: v.Column, tag: v.ShortTag(), value: v.Value, path: p})
		walk(v, p, spots)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			walk(c, path, spots)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			*spots = append(*spots, spot{line: k.Line, col: k.Column, isKey: true, key: k.Value, path: path})
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			add(n.Content[i+1], p)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			add(c, fmt.Sprintf("%s[%d]", path, i))
		}
	}
}

// reword turns one yaml.v3 message into "line N: key: problem".
func reword(msg string, spots []spot) string {
	if m := unknownRe.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		out := fmt.Sprintf("line %d: unknown key %q", line, m[2])
		for _, s := range spots {
			if s.isKey && s.line == line && s.key == m[2] && s.path != "" {
				return out + " (in " + s.path + ")"
			}
		}
		return out
	}
	if m := typeRe.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		tag, value, exact := m[2], m[3], !strings.HasSuffix(m[3], "...")
		problem := fmt.Sprintf("expected %s, got %s", want(m[4]), got(tag, value))
		path := ""
		for _, s := range spots { // the last match is the innermost node
			if !s.isKey && s.line == line && s.tag == tag && (!exact || value == "" || s.value == value) {
				path = s.path
			}
		}
		if path == "" {
			return fmt.Sprintf("line %d: %s", line, problem)
		}
		return fmt.Sprintf("line %d: %s: %s", line, path, problem)
	}
	if m := posRe.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		col, _ := strconv.Atoi(m[2])
		for _, s := range spots {
			if !s.isKey && s.line == line && s.col == col && s.path != "" {
				return fmt.Sprintf("line %d: %s: %s", line, s.path, m[3])
			}
		}
		return fmt.Sprintf("line %d: %s", line, m[3])
	}
	return msg
}

func want(goType string) string {
	switch {
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "true or false"
	case strings.HasPrefix(goType, "float"), strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "a number"
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map["), strings.HasPrefix(goType, "config."):
		return "a mapping"
	}
	return goType
}

func got(tag, value string) string {
	switch tag {
	case "!!seq":
		return "a list"
	case "!!map":
		return "a mapping"
	}
	return strconv.Quote(value)
}

// Client and TrustedIssuer hold their jwks as JSON, which yaml.v3 cannot
// decode into by itself; these plain twins have no methods, so decoding them
// does not recurse.
type (
	plainClient        Client
	plainIssuer        TrustedIssuer
	plainTokenExchange TokenExchange
)

// UnmarshalYAML decodes a token exchange policy strictly: a nested
// mapping is decoded by Node.Decode, which would let a misspelt key pass.
func (t *TokenExchange) UnmarshalYAML(n *yaml.Node) error {
	return decodeWithJWKS(n, (*plainTokenExchange)(t), nil)
}

// UnmarshalYAML decodes a client strictly, converting jwks to JSON.
func (c *Client) UnmarshalYAML(n *yaml.Node) error {
	return decodeWithJWKS(n, (*plainClient)(c), &c.JWKS)
}

// MarshalYAML writes jwks back as a YAML mapping.
func (c Client) MarshalYAML() (any, error) {
	return encodeWithJWKS(plainClient(c), c.JWKS)
}

// UnmarshalYAML decodes a trusted issuer strictly, converting jwks to JSON.
func (t *TrustedIssuer) UnmarshalYAML(n *yaml.Node) error {
	return decodeWithJWKS(n, (*plainIssuer)(t), &t.JWKS)
}

// MarshalYAML writes jwks back as a YAML mapping.
func (t TrustedIssuer) MarshalYAML() (any, error) {
	return encodeWithJWKS(plainIssuer(t), t.JWKS)
}

// decodeWithJWKS decodes the mapping n into out, converting the value of its
// jwks key to JSON (nil jwks: out has no such key). Node.Decode ignores the decoder's KnownFields setting, so
// unknown keys are checked here, in yaml.v3's own words for explain to reword.
func decodeWithJWKS(n *yaml.Node, out any, jwks *json.RawMessage) error {
	if n.Kind != yaml.MappingNode {
		return n.Decode(out) // the usual "cannot unmarshal" error
	}
	known := map[string]bool{"<<": true}
	t := reflect.TypeOf(out).Elem()
	for i := range t.NumField() {
		known[yamlKey(t.Field(i))] = true
	}
	var (
		errs     []string
		raw      json.RawMessage
		jwksLine int
	)
	rest := *n
	rest.Content = nil
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case k.Value == "jwks" && jwks != nil && jwksLine != 0:
			errs = append(errs, fmt.Sprintf("line %d: mapping key \"jwks\" already defined at line %d", k.Line, jwksLine))
		case k.Value == "jwks" && jwks != nil:
			jwksLine = k.Line
			var err error
			if raw, err = yamlToJSON(v); err != nil {
				errs = append(errs, fmt.Sprintf("line %d: column %d: %v", v.Line, v.Column, err))
			}
		case !known[k.Value]:
			errs = append(errs, fmt.Sprintf("line %d: field %s not found in type %T", k.Line, k.Value, out))
		default:
			rest.Content = append(rest.Content, k, v)
		}
	}
	if err := rest.Decode(out); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return err
		}
		errs = append(errs, te.Errors...)
	}
	if len(errs) > 0 {
		return &yaml.TypeError{Errors: errs}
	}
	if jwks != nil {
		*jwks = raw
	}
	return nil
}

// yamlToJSON converts a jwks value: null, a mapping, or the JSON text itself
// as a string (handy when pasting a JWKS document).
func yamlToJSON(v *yaml.Node) (json.RawMessage, error) {
	switch {
	case v.ShortTag() == "!!null":
		return nil, nil
	case v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" && json.Valid([]byte(v.Value)):
		return json.RawMessage(v.Value), nil
	case v.Kind == yaml.MappingNode:
		var x any
		if err := v.Decode(&x); err != nil {
			return nil, err
		}
		b, err := json.Marshal(x)
		if err != nil {
			return nil, fmt.Errorf("cannot convert to JSON: %v", err)
		}
		return b, nil
	}
	return nil, errors.New("must be a JWK set ({keys: [...]}) or its JSON text")
}

func encodeWithJWKS(v any, jwks json.RawMessage) (*yaml.Node, error) {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return nil, err
	}
	var x any
	if len(jwks) > 0 {
		if err := json.Unmarshal(jwks, &x); err != nil {
			return nil, fmt.Errorf("jwks: %w", err)
		}
	}
	var j yaml.Node
	if err := j.Encode(x); err != nil {
		return nil, err
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "jwks" {
			n.Content[i+1] = &j
		}
	}
	return &n, nil
}

// yamlKey is the key of a struct field: its yaml tag's name.
func yamlKey(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}
