// JSON Schema (draft-07) of Inspektor Gadget's gadget.yaml, checked against the YAML as
// plain JS values. It follows how ig itself reads the file:
//
// - ig decodes gadget.yaml with Go's yaml.v2 into string fields and map[string]string:
//   any plain value (string, number, boolean, null) becomes its text ("true", "20"), while a
//   list or a mapping where a string belongs is an error. So string fields accept any plain
//   value and reject collections; real files rely on this (`enable-containers-datasource: true`,
//   `columns.width: 20`, `defaultValue: 0`).
// - Top-level keys are a closed set here, but ig decodes leniently: an unknown key (a typo
//   such as `homepageUrl`, or profile_cpu's run-time `programs`) is accepted and reported as
//   a warning by readMetadata (additionalProperties findings are never fatal). The set includes the runtime
//   keys (`operator`, `paramDefaults`, `dataSources`, read case-insensitively by ig's config
//   loader) and the keys of the pre-datasource format (`tracers`, `structs`, `ebpfParams`, ...)
//   so that old images still verify.
// - Data sources and their fields hold only `annotations` (and `fields`); params are open,
//   because custom params carry `patch` and `values` trees that operators interpret.

/** Any YAML plain value; ig turns it into its text. */
const plain = { type: ['string', 'number', 'boolean', 'null'] } as const;

/** map[string]string in ig: keys to plain values. */
const stringMap = { type: ['object', 'null'], additionalProperties: plain } as const;

const plainList = { type: ['array', 'null'], items: plain } as const;

/** params.ParamDesc: the fields ig reads are plain values; the rest belongs to operators. */
const paramDesc = {
  type: ['object', 'null'],
  properties: {
    key: plain,
    alias: plain,
    title: plain,
    defaultValue: plain,
    description: plain,
    typeHint: plain,
    valueHint: plain,
    isMandatory: plain,
    tags: plainList,
    possibleValues: plainList,
  },
  additionalProperties: true,
} as const;

const paramMap = { type: ['object', 'null'], additionalProperties: paramDesc } as const;

const field = {
  type: ['object', 'null'],
  properties: { annotations: stringMap },
  additionalProperties: false,
} as const;

const dataSource = {
  type: ['object', 'null'],
  properties: {
    annotations: stringMap,
    fields: { type: ['object', 'null'], additionalProperties: field },
  },
  additionalProperties: false,
} as const;

const dataSources = { type: ['object', 'null'], additionalProperties: dataSource } as const;

/** Sections whose inner shape ig's old format or its operators define; only "a mapping" is checked. */
const openMap = { type: ['object', 'null'] } as const;

export const GADGET_METADATA_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://gadget-oci.invalid/schemas/gadget-metadata.json',
  title: 'Inspektor Gadget gadget.yaml',
  type: 'object',
  properties: {
    name: plain,
    description: plain,
    homepageURL: plain,
    documentationURL: plain,
    sourceURL: plain,
    annotations: stringMap,
    datasources: dataSources,
    dataSources: dataSources,
    params: { type: ['object', 'null'], additionalProperties: paramMap },
    gadgetParams: paramMap,
    ebpfParams: paramMap,
    operator: { type: ['object', 'null'], additionalProperties: openMap },
    paramDefaults: stringMap,
    // The format before data sources (ig < v0.26).
    tracers: openMap,
    toppers: openMap,
    snapshotters: openMap,
    structs: openMap,
  },
  additionalProperties: false,
} as const;

/** The top-level keys the schema accepts, for "did you mean" hints. */
export const METADATA_TOP_LEVEL_KEYS: readonly string[] = Object.keys(GADGET_METADATA_SCHEMA.properties);
