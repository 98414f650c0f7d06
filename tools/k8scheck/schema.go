package k8scheck

import (
	"context"
	"fmt"
	"sort"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
)

// CRValidator checks custom resources the way the API server does for a
// CustomResourceDefinition: unknown fields (pruning), OpenAPI schema
// (types, enums, required, patterns) after defaulting, and the CEL rules
// (x-kubernetes-validations).
type CRValidator struct {
	versions map[schema.GroupVersionKind]*crdVersion
}

type crdVersion struct {
	namespaced bool
	structural *structuralschema.Structural
	schema     apiservervalidation.SchemaValidator
	cel        *cel.Validator
}

// NewCRValidator compiles the schemas of every served version of crds.
func NewCRValidator(crds []*apiextensionsv1.CustomResourceDefinition) (*CRValidator, error) {
	v := &CRValidator{versions: map[schema.GroupVersionKind]*crdVersion{}}
	for _, crd := range crds {
		for _, ver := range crd.Spec.Versions {
			if !ver.Served || ver.Schema == nil || ver.Schema.OpenAPIV3Schema == nil {
				continue
			}
			internal := &apiextensions.JSONSchemaProps{}
			if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(ver.Schema.OpenAPIV3Schema, internal, nil); err != nil {
				return nil, fmt.Errorf("%s %s: %v", crd.Name, ver.Name, err)
			}
			s, err := structuralschema.NewStructural(internal)
			if err != nil {
				return nil, fmt.Errorf("%s %s: not a structural schema: %v", crd.Name, ver.Name, err)
			}
			sv, _, err := apiservervalidation.NewSchemaValidator(internal)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %v", crd.Name, ver.Name, err)
			}
			gvk := schema.GroupVersionKind{Group: crd.Spec.Group, Version: ver.Name, Kind: crd.Spec.Names.Kind}
			v.versions[gvk] = &crdVersion{
				namespaced: crd.Spec.Scope == apiextensionsv1.NamespaceScoped,
				structural: s,
				schema:     sv,
				cel:        cel.NewValidator(s, true, celconfig.PerCallLimit),
			}
		}
	}
	return v, nil
}

// Knows reports whether gvk is a custom resource kind this validator checks.
func (v *CRValidator) Knows(gvk schema.GroupVersionKind) bool {
	_, ok := v.versions[gvk]
	return ok
}

// Validate returns every problem with obj, or nil.
func (v *CRValidator) Validate(obj map[string]interface{}, namespaced bool) []error {
	gvk := schema.FromAPIVersionAndKind(fmt.Sprint(obj["apiVersion"]), fmt.Sprint(obj["kind"]))
	ver, ok := v.versions[gvk]
	if !ok {
		return []error{fmt.Errorf("no CustomResourceDefinition serves %s", gvk)}
	}
	var errs []error
	if ver.namespaced != namespaced {
		errs = append(errs, fmt.Errorf("%s is namespaced=%v, the object says namespaced=%v", gvk.Kind, ver.namespaced, namespaced))
	}
	// Work on a copy: pruning and defaulting change it.
	u := runtime.DeepCopyJSON(obj)
	unknown := structuralpruning.PruneWithOptions(u, ver.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
	sort.Strings(unknown)
	for _, p := range unknown {
		errs = append(errs, fmt.Errorf("unknown field %q", p))
	}
	structuraldefaulting.Default(u, ver.structural)
	for _, e := range apiservervalidation.ValidateCustomResource(nil, u, ver.schema) {
		errs = append(errs, e)
	}
	celErrs, _ := ver.cel.Validate(context.Background(), field.NewPath(""), ver.structural, u, nil, celconfig.RuntimeCELCostBudget)
	for _, e := range celErrs {
		errs = append(errs, e)
	}
	return errs
}
