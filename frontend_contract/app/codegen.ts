// GraphQL Code Generator: typed document nodes for every operation in ../operations (the single
// source), from the API schema committed in ../schema.graphql (see ../api_schema.py).
import type { CodegenConfig } from '@graphql-codegen/cli';

const config: CodegenConfig = {
  schema: '../schema.graphql',
  documents: ['../operations/*.graphql'],
  ignoreNoDocuments: false,
  generates: {
    './src/gql/': {
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      config: {
        scalars: { Decimal: 'string', DateTime: 'string' },
        enumsAsTypes: true,
        useTypeImports: true,
        skipTypename: true,
        nonOptionalTypename: false,
      },
    },
  },
};

export default config;
