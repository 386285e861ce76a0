import { GraphQLScalarType, valueFromASTUntyped } from 'graphql';

/** Arbitrary JSON (results, steps, failure, positions, event data). */
export const JSONScalar = new GraphQLScalarType({
  name: 'JSON',
  description: 'Any JSON value',
  serialize: (v: unknown) => v,
  parseValue: (v: unknown) => v,
  parseLiteral: (ast, variables) => valueFromASTUntyped(ast, variables),
});
