package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
)

// Nomad job files are checked as parsed HCL: `nomad job validate` needs
// the nomad module, which is not open source from 1.7 on (BUSL) and is not
// used here. The helpers below parse a job with hcl/v2 and evaluate its
// expressions the way Nomad's HCL2 parser does at submission (input
// variables, the sha256 function); ${NOMAD_*} runtime variables, which
// Nomad leaves for the client, are filled in with what the client would
// put there (see runtimeVars).

// problems collects everything wrong with a file: a check reports all of
// them, and a test fails on any.
type problems []string

func (p *problems) addf(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// job is a parsed Nomad job file.
type job struct {
	block *hclsyntax.Block // the job block
	ctx   *hcl.EvalContext
}

// sha256Func is Nomad's HCL2 sha256(): the lowercase hex SHA-256 of a string.
var sha256Func = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "str", Type: cty.String}},
	Type:   function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		sum := sha256.Sum256([]byte(args[0].AsString()))
		return cty.StringVal(hex.EncodeToString(sum[:])), nil
	},
})

// parseJob parses a job file: variable blocks (defaults, or the values in
// given, as `nomad job run -var` would pass them) and exactly one job.
func parseJob(src []byte, filename string, given map[string]string, p *problems) *job {
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		p.addf("%s: %s", filename, diags.Error())
		return nil
	}
	body := f.Body.(*hclsyntax.Body)
	for name := range body.Attributes {
		p.addf("%s: unexpected top-level attribute %q", filename, name)
	}
	vars := map[string]cty.Value{}
	var jobs []*hclsyntax.Block
	for _, b := range body.Blocks {
		switch b.Type {
		case "variable":
			name := label(b)
			if s, ok := given[name]; ok {
				vars[name] = cty.StringVal(s)
				continue
			}
			a, ok := b.Body.Attributes["default"]
			if !ok {
				p.addf("%s: variable %q has no default and the test gives no value", filename, name)
				continue
			}
			v, d := a.Expr.Value(nil)
			if d.HasErrors() {
				p.addf("%s: variable %q default: %s", filename, name, d.Error())
				continue
			}
			vars[name] = v
		case "job":
			jobs = append(jobs, b)
		default:
			p.addf("%s: unexpected top-level block %q", filename, b.Type)
		}
	}
	for name := range given {
		if _, ok := vars[name]; !ok {
			p.addf("%s: the test gives variable %q, which the job does not declare", filename, name)
		}
	}
	if len(jobs) != 1 {
		p.addf("%s: %d job blocks, want 1", filename, len(jobs))
		return nil
	}
	return &job{block: jobs[0], ctx: &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(vars)},
		Functions: map[string]function.Function{"sha256": sha256Func},
	}}
}

func label(b *hclsyntax.Block) string {
	if len(b.Labels) == 0 {
		return ""
	}
	return b.Labels[0]
}

func blocksOf(b *hclsyntax.Body, typ string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, blk := range b.Blocks {
		if blk.Type == typ {
			out = append(out, blk)
		}
	}
	return out
}

// value evaluates attribute name of b; ok is false if it is absent or
// does not evaluate (reported).
func (j *job) value(b *hclsyntax.Body, name, where string, p *problems) (cty.Value, bool) {
	a, ok := b.Attributes[name]
	if !ok {
		return cty.NilVal, false
	}
	v, d := a.Expr.Value(j.ctx)
	if d.HasErrors() {
		p.addf("%s.%s: %s", where, name, d.Error())
		return cty.NilVal, false
	}
	return v, true
}

// has reports whether attribute name is set.
func has(b *hclsyntax.Body, name string) bool { _, ok := b.Attributes[name]; return ok }

// str is a string attribute ("" and a problem if absent or not a string).
func (j *job) str(b *hclsyntax.Body, name, where string, p *problems) string {
	v, ok := j.value(b, name, where, p)
	if !ok {
		p.addf("%s.%s: missing", where, name)
		return ""
	}
	s, err := convert.Convert(v, cty.String)
	if err != nil || s.IsNull() || !s.IsKnown() {
		p.addf("%s.%s: not a string", where, name)
		return ""
	}
	return s.AsString()
}

// optStr is a string attribute or def if absent.
func (j *job) optStr(b *hclsyntax.Body, name, def, where string, p *problems) string {
	if !has(b, name) {
		return def
	}
	return j.str(b, name, where, p)
}

// num is an integer attribute (-1 and a problem if absent or not an integer).
func (j *job) num(b *hclsyntax.Body, name, where string, p *problems) int {
	v, ok := j.value(b, name, where, p)
	if !ok {
		p.addf("%s.%s: missing", where, name)
		return -1
	}
	n, err := convert.Convert(v, cty.Number)
	if err != nil || n.IsNull() || !n.IsKnown() {
		p.addf("%s.%s: not a number", where, name)
		return -1
	}
	i, acc := n.AsBigFloat().Int64()
	if acc != big.Exact {
		p.addf("%s.%s: not an integer", where, name)
		return -1
	}
	return int(i)
}

// strs is a list of strings attribute.
func (j *job) strs(b *hclsyntax.Body, name, where string, p *problems) []string {
	v, ok := j.value(b, name, where, p)
	if !ok {
		p.addf("%s.%s: missing", where, name)
		return nil
	}
	if v.IsNull() || !(v.Type().IsListType() || v.Type().IsTupleType()) {
		p.addf("%s.%s: not a list", where, name)
		return nil
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		s, err := convert.Convert(e, cty.String)
		if err != nil || s.IsNull() {
			p.addf("%s.%s: an element is not a string", where, name)
			return nil
		}
		out = append(out, s.AsString())
	}
	return out
}

// strMap is every attribute of a block (env, meta, header) as strings;
// list values (a check header's) are joined with ",".
func (j *job) strMap(b *hclsyntax.Body, where string, p *problems) map[string]string {
	out := map[string]string{}
	for name := range b.Attributes {
		v, ok := j.value(b, name, where, p)
		if !ok {
			continue
		}
		if v.Type().IsListType() || v.Type().IsTupleType() {
			out[name] = strings.Join(j.strs(b, name, where, p), ",")
			continue
		}
		out[name] = j.str(b, name, where, p)
	}
	return out
}

// one is the only block of typ in b, or nil and a problem.
func one(b *hclsyntax.Body, typ, where string, p *problems) *hclsyntax.Block {
	bs := blocksOf(b, typ)
	if len(bs) != 1 {
		p.addf("%s: %d %s blocks, want 1", where, len(bs), typ)
		return nil
	}
	return bs[0]
}

// labels returns the labels of the blocks, sorted.
func labels(bs []*hclsyntax.Block) []string {
	var out []string
	for _, b := range bs {
		out = append(out, label(b))
	}
	slices.Sort(out)
	return out
}
